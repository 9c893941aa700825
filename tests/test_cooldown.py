"""--cooldown: a pause, or a wait for the hottest thermal zone, before every cell but the first."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.cooldown import Cooldown, cool_down, parse_cooldown
from pytest_edgeprof.measure.device_state import hottest_c

ACCEPTED = "expected seconds above 0 and at most 3600 (30 or 2.5s), or until=TEMPERATURE in C"


@given(st.text(max_size=24))
def test_any_text_is_a_cooldown_or_one_line_saying_what_is_accepted(text):
    try:
        cooldown = parse_cooldown(text)
    except UsageError as exc:
        assert str(exc).startswith(f"bad --cooldown {text!r}: {ACCEPTED}") and "\n" not in str(exc)
    else:
        assert (cooldown.seconds is None) != (cooldown.until_c is None)
        assert 0 < (cooldown.seconds or cooldown.until_c) <= 3600 and 0 < cooldown.max_wait_s <= 3600


@given(st.floats(min_value=0.01, max_value=3600), st.floats(min_value=1, max_value=150), st.integers(1, 3600))
def test_written_values_read_back(seconds, celsius, longest):
    assert parse_cooldown(f"{seconds}") == parse_cooldown(f"{seconds}s") == Cooldown(seconds=seconds)
    assert parse_cooldown(f"until={celsius}C") == Cooldown(until_c=celsius, max_wait_s=300.0)
    assert parse_cooldown(f"until={celsius}C,max={longest}s") == Cooldown(until_c=celsius, max_wait_s=longest)


@pytest.mark.parametrize("bad", ["0", "-5", "1h", "until=50", "until=50F", "until=0C", "until=200C",
                                 "until=50C,max=0s", "until=50C,max=2h", "50C", ""])
def test_bad_values_by_example(bad):
    with pytest.raises(UsageError, match=re.escape(f"bad --cooldown {bad!r}: {ACCEPTED}")):
        parse_cooldown(bad)


def _zone(root: Path, celsius: float) -> Path:
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "type").write_text("x86_pkg_temp\n")
    (zone / "temp").write_text(f"{int(celsius * 1000)}\n")
    return root


class FakeTime:
    """A clock that moves only when slept on; each sleep lets the zone cool by ``cooling`` C."""

    def __init__(self, root: Path, start_c: float, cooling: float) -> None:
        self.now, self.root, self.celsius, self.cooling = 0.0, root, start_c, cooling

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.celsius -= self.cooling
        _zone(self.root, self.celsius)


def test_until_waits_for_the_hottest_zone_then_goes_on(tmp_path):
    clock = FakeTime(_zone(tmp_path, 62.0), 62.0, cooling=3.0)
    record = cool_down(Cooldown(until_c=50.0), tmp_path, clock.sleep, lambda: clock.now)
    assert record == {"waited_s": 4.0, "until_c": 50.0, "hottest_c": 50.0, "reached": True}


def test_until_gives_up_at_its_maximum_wait(tmp_path):
    clock = FakeTime(_zone(tmp_path, 90.0), 90.0, cooling=0.0)
    record = cool_down(Cooldown(until_c=50.0, max_wait_s=2.5), tmp_path, clock.sleep, lambda: clock.now)
    assert record == {"waited_s": 2.5, "until_c": 50.0, "hottest_c": 90.0, "reached": False}


def test_until_without_a_readable_temperature_does_not_wait(tmp_path):
    clock = FakeTime(tmp_path, 0.0, cooling=0.0)
    record = cool_down(Cooldown(until_c=50.0), tmp_path, clock.sleep, lambda: clock.now)
    assert record == {"waited_s": 0.0, "until_c": 50.0, "hottest_c": None, "reached": False}
    assert hottest_c(_zone(tmp_path, 41.5)) == 41.5


THREE_CELLS = """
import pytest
from torch import nn

@pytest.mark.parametrize("batch", [1, 2, 3])
def test_net(edgeprof, batch):
    edgeprof(nn.Conv2d(3, 4, 3), batch_size=batch, input_shape=(3, 16, 16), name="net")
"""
FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.05", "--benchmark-min-rounds", "3",
        "-p", "no:cacheprovider", "--journal", "j.jsonl"]


def _cooldowns(pytester) -> list:
    lines = (pytester.path / "j.jsonl").read_text().splitlines()
    return [json.loads(line)["extra_info"]["device_state"].get("cooldown") for line in lines]


def test_cells_but_the_first_wait_and_save_the_wait(pytester):
    pytester.makepyfile(THREE_CELLS)
    began = time.perf_counter()
    pytester.runpytest(*FAST, "--cooldown", "0.4").assert_outcomes(passed=3)
    assert time.perf_counter() - began >= 0.8
    assert _cooldowns(pytester) == [None, {"waited_s": 0.4}, {"waited_s": 0.4}]


def test_a_temperature_wait_reads_the_thermal_zones_or_warns_once_and_goes_on(pytester):
    pytester.makeini("[pytest]\nedgeprof_cooldown = until=150C")
    pytester.makepyfile(THREE_CELLS)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(passed=3)
    first, *others = _cooldowns(pytester)
    assert first is None and all(o["until_c"] == 150.0 and o["waited_s"] < 1 for o in others)
    warned = result.stdout.str().count("no thermal zone is readable here")
    if hottest_c() is None:  # this VM: no /sys/class/thermal
        assert warned == 1 and all(o["hottest_c"] is None and not o["reached"] for o in others)
    else:
        assert warned == 0 and all(o["reached"] for o in others)


def test_a_bad_cooldown_is_one_usage_error(pytester):
    pytester.makepyfile(THREE_CELLS)
    result = pytester.runpytest(*FAST, "--cooldown", "until=50F")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --cooldown/edgeprof_cooldown: bad --cooldown 'until=50F': {ACCEPTED}*"])

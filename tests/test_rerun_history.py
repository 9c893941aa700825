"""Each timed cell's median kept in pytest's cache, and the spread of earlier reruns in every repeat interval
(``plugin/features/rerun_history.py``), on real runs of a small module."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.latency_stats import rerun_spread
from pytest_edgeprof.plugin.features import rerun_history
from pytest_edgeprof.plugin.features.rerun_history import CACHE_KEY, KEPT, read_history

TEST = """
import pytest
from torch import nn
from pytest_edgeprof.measurement import Cell


@pytest.mark.parametrize("width", [4, 8, 12])
def test_tiny(edgeprof, width):
    edgeprof(nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU()), cell=Cell(f"tiny{width}", "base", 1, (3, 16, 16)))
"""
RUN = ["--device", "cpu", "--benchmark-max-time", "0.05", "--benchmark-min-rounds", "12", "--no-energy", "-p", "no:randomly"]


def run(pytester: pytest.Pytester, name: str, *extra: str) -> tuple[dict[str, dict], pytest.RunResult]:
    """One run of TEST; each cell's saved extra_info by model, and the result."""
    out = pytester.path / f"{name}.json"
    result = pytester.runpytest(*RUN, f"--benchmark-json={out}", *extra)
    result.assert_outcomes(passed=3)
    return {b["extra_info"]["model"]: b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]}, result


def test_from_the_third_run_each_interval_holds_the_spread_of_the_earlier_reruns(pytester):
    pytester.makepyfile(test_tiny=TEST)
    first, _ = run(pytester, "first")
    second, _ = run(pytester, "second")
    assert all("latency_rerun95" not in info for info in [*first.values(), *second.values()])  # no ratio yet
    third, _ = run(pytester, "third")
    ratios = [math.log(second[model]["latency_ms_median"] / first[model]["latency_ms_median"]) for model in first]
    expected = rerun_spread(ratios)
    for info in third.values():
        assert info["latency_rerun95"] == pytest.approx(expected) and info["latency_rerun_pairs"] == 3
        low, high = info["latency_ms_repeat95"]
        median = info["latency_ms_median"]
        assert low <= max(0.0, median * (1 - expected) * (1 + 1e-9)) and high >= median * (1 + expected) * (1 - 1e-9)
    cached = json.loads((pytester.path / ".pytest_cache" / "v" / CACHE_KEY).read_text())
    (cells,) = cached["pools"].values()
    assert sorted(len(medians) for medians in cells.values()) == [3, 3, 3]


def test_without_pytests_cache_nothing_is_kept_or_widened(pytester):
    pytester.makepyfile(test_tiny=TEST)
    for name in ("one", "two", "three"):
        infos, _ = run(pytester, name, "-p", "no:cacheprovider")
        assert all("latency_rerun95" not in info for info in infos.values())
    assert not (pytester.path / ".pytest_cache").exists()


def test_only_the_last_medians_are_kept_per_cell(pytester):
    pytester.makepyfile(test_tiny=TEST)
    cache = pytester.path / ".pytest_cache" / "v" / CACHE_KEY
    run(pytester, "seed")
    seeded = json.loads(cache.read_text())
    for cells in seeded["pools"].values():
        for key in cells:
            cells[key] = [1.0] * KEPT  # ten earlier runs of exactly 1 ms: no spread at all
    cache.write_text(json.dumps(seeded))
    infos, _ = run(pytester, "next")
    assert all(info["latency_rerun95"] == 0.0 and info["latency_rerun_pairs"] == 3 * (KEPT - 1) for info in infos.values())
    for cells in json.loads(cache.read_text())["pools"].values():
        assert all(len(medians) == KEPT and medians[-1] != 1.0 for medians in cells.values())


def test_a_pool_keeps_its_most_recently_measured_cells(pytester, monkeypatch):
    monkeypatch.setattr(rerun_history, "KEPT_CELLS", 4)
    pytester.makepyfile(test_tiny=TEST)
    cache = pytester.path / ".pytest_cache" / "v" / CACHE_KEY
    run(pytester, "seed")
    seeded = json.loads(cache.read_text())
    (pool,) = seeded["pools"]
    measured = list(seeded["pools"][pool])
    seeded["pools"][pool] = {"old-a": [1.0], "old-b": [1.0], "old-c": [1.0], **seeded["pools"][pool]}
    cache.write_text(json.dumps(seeded))
    run(pytester, "next")
    kept = json.loads(cache.read_text())["pools"][pool]
    assert list(kept) == ["old-c", *measured]  # the three cells of this run last, the oldest seeded ones gone


@pytest.mark.parametrize("value", [[1, 2], {"format": 2, "pools": {}}, {"format": 1, "pools": {"p": {"k": [1.0, -2.0]}}},
                                   {"format": 1, "pools": {"p": {"k": ["1"]}}}])
def test_a_cache_value_edgeprof_did_not_write_is_said_once_and_replaced(pytester, value):
    pytester.makepyfile(test_tiny=TEST)
    cache = pytester.path / ".pytest_cache" / "v" / CACHE_KEY
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps(value))
    _, result = run(pytester, "run")
    result.stdout.fnmatch_lines([f"*pytest's cache value {CACHE_KEY} is not the medians edgeprof keeps*ignored*"])
    assert json.loads(cache.read_text())["format"] == 1


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=3),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                     max_leaves=8)


@given(st.one_of(_JSON, st.fixed_dictionaries({"format": st.just(1), "pools": _JSON}),
                 st.fixed_dictionaries({"format": st.just(1), "pools": st.dictionaries(
                     st.text(max_size=3), st.dictionaries(st.text(max_size=3), st.lists(_JSON, max_size=3), max_size=2),
                     max_size=2)})))
def test_any_cache_value_is_read_as_medians_or_named_in_one_line(value):
    try:
        pools = read_history(value)
    except ValueError as exc:
        assert "\n" not in str(exc) and CACHE_KEY in str(exc)
        return
    assert all(m > 0 and math.isfinite(m) for cells in pools.values() for medians in cells.values() for m in medians)

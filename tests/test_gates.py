"""The statistical latency gate (``--fail latency``: significant and at least a minimum effect) and the repeat
interval's session drift, on a real saved run and runs built from it with shifted rounds."""

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.cli import main
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.latency_stats import session_drift, widen_for_drift
from pytest_edgeprof.measurement import Cell, Latency, Measurement
from pytest_edgeprof.runs.compare import MIN_EFFECT_PERCENT, parse_fail_spec, regressions
from pytest_edgeprof.runs.saved import load_run

# --- the repeat interval widened by the session's drift ----------------------------------------------


def test_drift_is_the_sentinel_readings_spread_and_widens_both_sides_in_quadrature():
    assert session_drift([0.001]) is None and session_drift([0.001, 0.001]) == 0.0
    assert session_drift([0.001, 0.0011, 0.0009]) == pytest.approx(0.1)
    low, high = widen_for_drift((9.9, 10.2), 10.0, 0.02)  # 2 x 2 % of 10 ms = 0.4 ms beside 0.1 / 0.2 ms
    assert low == pytest.approx(10 - (0.1**2 + 0.4**2) ** 0.5) and high == pytest.approx(10 + (0.2**2 + 0.4**2) ** 0.5)
    assert widen_for_drift((9.9, 10.1), 10.0, 0.0) == pytest.approx((9.9, 10.1))
    assert widen_for_drift((0.5, 1.5), 1.0, 5.0)[0] == 0.0  # never below 0


def test_the_drift_is_saved_and_an_old_run_without_it_reads_back():
    latency = Latency.of([0.01 * (1 + 0.01 * random.Random(1).gauss(0, 1)) for _ in range(100)]).with_drift(0.03)
    measurement = Measurement(Cell("tiny", "base", 2, (3, 48, 48)), "cpu")
    measurement.latency = latency
    info = measurement.to_extra_info()
    assert info["latency_drift"] == 0.03 and info["latency_ms_repeat95"] == list(latency.repeat95_ms)
    del info["latency_drift"]
    assert Measurement.from_extra_info(info).latency.drift is None


def test_a_timed_run_saves_the_sentinel_drift_inside_its_repeat_interval(grid_run):
    for saved in load_run(grid_run).cells.values():
        latency = saved.measurement.latency
        assert latency.drift is not None and latency.drift >= 0
        if latency.repeat95_ms and latency.ci95_ms:
            assert latency.repeat95_ms[0] <= latency.ci95_ms[0] <= latency.ci95_ms[1] <= latency.repeat95_ms[1]


# --- the gate on runs built from a real one with shifted rounds --------------------------------------


def shifted_run(real: Path, out: Path, factor: float, seed: int, drift: float | None = None, spread: float = 0.01) -> Path:
    """The real run with each cell's latency replaced by 200 rounds around its median x ``factor`` (relative
    spread ``spread``, noise drawn from ``seed``), and the session ``drift`` added where given."""
    data = json.loads(real.read_text())
    noise = random.Random(seed)
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        measurement = Measurement.from_extra_info(info)
        median_s = info["latency_ms_median"] / 1e3 * factor
        latency = Latency.of([median_s * (1 + spread * noise.gauss(0, 1)) for _ in range(200)])
        measurement.latency = latency.with_drift(drift) if drift is not None else latency
        info.update(measurement.to_extra_info())
    out.write_text(json.dumps(data))
    return out


_SHIFTED: dict[str, dict[str, Path]] = {}


@pytest.fixture
def runs(grid_run, tmp_path_factory):
    """Made once per session from the real grid run (itself made once)."""
    if not _SHIFTED:
        folder = tmp_path_factory.mktemp("shifted")
        made = [("a", 1.0, 1, None), ("a_again", 1.0, 2, None), ("slower20", 1.2, 3, None), ("slower1", 1.01, 4, None),
                ("slower3", 1.03, 5, None), ("slower5_drifting", 1.05, 6, 0.03)]
        _SHIFTED["runs"] = {name: shifted_run(grid_run, folder / f"{name}.json", factor, seed, drift)
                            for name, factor, seed, drift in made}
    return _SHIFTED["runs"]


def _flagged(a: Path, b: Path, spec: str = "latency") -> set[str]:
    return {r.cell_id for r in regressions(load_run(a), load_run(b), parse_fail_spec(spec)) if r.metric == "latency"}


def test_the_same_code_twice_is_not_flagged_and_20_percent_more_is_in_every_cell(runs):
    cells = set(load_run(runs["a"]).cells)
    assert _flagged(runs["a"], runs["a_again"]) == set()
    assert _flagged(runs["a"], runs["slower20"]) == cells
    assert _flagged(runs["slower20"], runs["a"]) == set()  # faster is no regression


def test_a_change_below_the_minimum_effect_or_the_limit_given_is_not_flagged(runs):
    cells = set(load_run(runs["a"]).cells)
    assert _flagged(runs["a"], runs["slower1"]) == set()  # significant maybe, but under 2 %
    assert _flagged(runs["a"], runs["slower3"]) == cells  # 3 %, intervals about ±0.6 %: both
    assert _flagged(runs["a"], runs["slower3"], "latency:5%") == set()
    assert _flagged(runs["a"], runs["slower20"], "latency:10%") == cells  # significant AND at least 10 %


def test_a_change_within_the_session_drift_is_not_significant(runs):
    # 5 % slower, but the B session's sentinel moved 3 %: B's interval reaches back over A's
    assert _flagged(runs["a"], runs["slower5_drifting"]) == set()
    assert _flagged(runs["a"], runs["slower5_drifting"], "latency:1%") == set()


def test_json_gives_regressed_and_the_intervals_per_cell_and_metric(runs, capsys):
    assert main(["compare", str(runs["a"]), str(runs["slower20"]), "--fail", "latency,memory:5%", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    for cell in report["cells"]:
        latency, throughput = cell["metrics"]["latency_ms_median"], cell["metrics"]["throughput_ips"]
        assert latency["regressed"] is True and throughput["regressed"] is False  # throughput not gated here
        significance = latency["significance"]
        assert significance["significant"] is True and significance["keys"] == ["latency_ms_repeat95"] * 2
        assert significance["interval_a"][1] < significance["interval_b"][0]
        assert throughput["significance"]["interval_b"][1] < throughput["significance"]["interval_a"][0]
        assert cell["metrics"]["peak_mem_bytes"]["regressed"] is False and "significance" not in cell["metrics"]["peak_mem_bytes"]


def test_the_regression_line_says_why(runs, capsys):
    assert main(["compare", str(runs["a"]), str(runs["slower20"]), "--fail", "throughput"]) == 1
    err = capsys.readouterr().err
    assert "past --fail throughput and significant (95 % intervals [" in err and "do not overlap)" in err


def test_a_run_saved_without_intervals_is_judged_by_the_limit_alone(runs, tmp_path):
    data = json.loads(runs["slower20"].read_text())
    for bench in data["benchmarks"]:
        for key in ("latency_ms_repeat95", "latency_ms_ci95", "latency_drift"):
            bench["extra_info"].pop(key)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    found = [r for r in regressions(load_run(runs["a"]), load_run(old), parse_fail_spec("latency")) if r.metric == "latency"]
    assert found and all("no saved interval: judged by the limit alone" in r.message for r in found)


# --- the --fail spec ---------------------------------------------------------------------------------


@given(st.sampled_from(["latency", "throughput"]), st.decimals(0, 1000, places=2))
def test_latency_and_throughput_take_a_limit_or_none(name, limit):
    [bare] = parse_fail_spec(name)
    assert bare.limit == MIN_EFFECT_PERCENT and bare.unit == "%" and bare.statistical
    [given_limit] = parse_fail_spec(f" {name}:{limit}% ")
    assert given_limit.limit == pytest.approx(float(limit)) and given_limit.statistical


@given(st.sampled_from(["memory", "energy", "flops", "top1"]))
def test_exact_metrics_need_a_limit_and_stay_exact(name):
    with pytest.raises(UsageError, match=f"bad --fail item '{name}'.*expected METRIC:LIMIT"):
        parse_fail_spec(name)
    [threshold] = parse_fail_spec(f"{name}:{'-0.5' if name == 'top1' else '5%'}")
    assert not threshold.statistical


def test_bad_specs_exit_2_in_one_line(capsys):
    for spec in ("memory", "latency:", "latency,latency:5%"):
        assert main(["compare", "a", "b", "--fail", spec]) == 2
        err = capsys.readouterr().err
        assert err.startswith("edgeprof: error: bad --fail") and err.count("\n") == 1


# --- the in-run gate ----------------------------------------------------------------------------------

SLEEPER = """
import os
import time
from torch import nn

class Sleeper(nn.Module):
    def forward(self, x):
        time.sleep(float(os.environ["SLEEP_S"]))
        return x

def test_sleeper(edgeprof):
    edgeprof(Sleeper(), batch_size=1, input_shape=(3, 8, 8), name="sleeper")
"""
FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.5", "-p", "no:cacheprovider"]


def test_the_in_run_gate_flags_a_far_slower_cell_only(pytester, monkeypatch):
    # 20 times slower: on a machine whose other work widens the intervals to ±100 % the change stays significant
    pytester.makepyfile(SLEEPER)
    monkeypatch.setenv("SLEEP_S", "0.002")
    pytester.runpytest_subprocess(*FAST, "--benchmark-autosave").assert_outcomes(passed=1)
    monkeypatch.setenv("SLEEP_S", "0.001")
    faster = pytester.runpytest_subprocess(*FAST, "--benchmark-compare=0001", "--edgeprof-compare-fail", "latency")
    assert faster.ret == 0
    monkeypatch.setenv("SLEEP_S", "0.04")
    slower = pytester.runpytest_subprocess(*FAST, "--benchmark-compare=0001", "--edgeprof-compare-fail", "latency")
    assert slower.ret == pytest.ExitCode.TESTS_FAILED
    slower.stdout.fnmatch_lines(["*edgeprof: regressions past --edgeprof-compare-fail*",
                                 "sleeper-base-b1-8x8: median latency * past --fail latency and significant*"])

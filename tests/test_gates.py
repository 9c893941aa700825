"""The statistical latency gate (``--fail latency``: significant and at least a minimum effect) and the repeat
interval's earlier reruns, on a real saved run and runs built from it with shifted rounds."""

import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.cli import main
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.latency_stats import rerun_spread, widen_for_rerun
from pytest_edgeprof.measurement import Cell, Latency, Measurement
from pytest_edgeprof.runs.compare import MIN_EFFECT_PERCENT, parse_fail_spec, regressions
from pytest_edgeprof.runs.saved import load_run
from pytest_edgeprof.runs.significance import Intervals

# --- the repeat interval at least as wide as earlier reruns ----------------------------------------------


def test_the_rerun_spread_is_t_times_the_root_mean_square_of_few_ratios_and_a_rank_of_many():
    assert rerun_spread([]) is None
    assert rerun_spread([0.02]) == pytest.approx(math.expm1(12.706 * 0.02))  # one ratio: t(1), wide but honest
    assert rerun_spread([0.02, -0.02, 0.02]) == pytest.approx(math.expm1(3.182 * 0.02))  # t(3) x rms
    assert rerun_spread([0.01] * 11 + [-0.01] * 5) == pytest.approx(math.expm1(2.131 * 0.01))  # t(15): the row below 16
    # 40 ratios: the 39th smallest size (ceil(0.95 x 41)); one process 90 % slow does not set the bound
    many = [0.001 * i * (-1) ** i for i in range(1, 40)] + [math.log(1.9)]
    assert rerun_spread(many) == pytest.approx(math.expm1(0.039))
    assert rerun_spread([0.0] * 200) == 0.0
    assert widen_for_rerun((9.9, 10.3), 10.0, 0.02) == pytest.approx((9.8, 10.3))  # each side at least 2 %
    assert widen_for_rerun((0.5, 1.5), 1.0, 2.0) == pytest.approx((0.0, 3.0))  # never below 0


def test_a_change_beyond_the_pooled_repeat_intervals_is_significant_though_they_overlap():
    repeat = "latency_ms_repeat95"
    judged = Intervals(10.0, 10.5, (9.6, 10.4), (10.1, 10.9), repeat, repeat)  # overlap; margin sqrt((.4² + .4²) / 2)
    assert judged.margin("higher") == pytest.approx(0.4) and judged.significant("higher")
    assert not judged.significant("lower")  # higher latency is no improvement
    own = Intervals(10.0, 10.5, (9.6, 10.4), (10.1, 10.9), "latency_ms_ci95", "latency_ms_ci95")
    assert own.margin("higher") == pytest.approx(0.32**0.5) and not own.significant("higher")  # in quadrature
    rate = Intervals(100.0, 90.0, (95.0, 104.0), (86.0, 95.0), repeat, repeat)  # throughput: lower is worse
    assert rate.margin("lower") == pytest.approx(((5**2 + 5**2) / 2) ** 0.5) and rate.significant("lower")


def test_the_rerun_spread_is_saved_and_an_old_run_without_it_reads_back():
    latency = Latency.of([0.01 * (1 + 0.01 * random.Random(1).gauss(0, 1)) for _ in range(100)]).with_rerun(0.05, 12)
    measurement = Measurement(Cell("tiny", "base", 2, (3, 48, 48)), "cpu")
    measurement.latency = latency
    info = measurement.to_extra_info()
    assert info["latency_rerun95"] == 0.05 and info["latency_rerun_pairs"] == 12
    assert info["latency_ms_repeat95"] == list(latency.repeat95_ms)
    assert latency.repeat95_ms[1] == pytest.approx(latency.median_ms * 1.05)
    del info["latency_rerun95"], info["latency_rerun_pairs"]
    back = Measurement.from_extra_info(info).latency
    assert back.rerun95 is None and back.rerun_pairs is None


# --- the gate on runs built from a real one with shifted rounds --------------------------------------


def shifted_run(real: Path, out: Path, factor: float, seed: int, rerun: float | None = None, spread: float = 0.01) -> Path:
    """The real run with each cell's latency replaced by 200 rounds around its median x ``factor`` (relative
    spread ``spread``, noise drawn from ``seed``), and earlier reruns' spread ``rerun`` where given."""
    data = json.loads(real.read_text())
    noise = random.Random(seed)
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        measurement = Measurement.from_extra_info(info)
        median_s = info["latency_ms_median"] / 1e3 * factor
        latency = Latency.of([median_s * (1 + spread * noise.gauss(0, 1)) for _ in range(200)])
        measurement.latency = latency.with_rerun(rerun, 30) if rerun is not None else latency
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
                ("slower3", 1.03, 5, None), ("slower5_noisy", 1.05, 6, 0.1)]
        _SHIFTED["runs"] = {name: shifted_run(grid_run, folder / f"{name}.json", factor, seed, rerun)
                            for name, factor, seed, rerun in made}
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


def test_a_change_within_a_noisy_machines_reruns_is_not_significant(runs):
    # 5 % slower, but B's machine reran within ±10 %: the two intervals pooled (sqrt((0.6² + 10²) / 2) = 7 %) reach past it
    assert _flagged(runs["a"], runs["slower5_noisy"]) == set()
    assert _flagged(runs["a"], runs["slower5_noisy"], "latency:1%") == set()


def test_json_gives_regressed_and_the_intervals_per_cell_and_metric(runs, capsys):
    assert main(["compare", str(runs["a"]), str(runs["slower20"]), "--fail", "latency,memory:5%", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    for cell in report["cells"]:
        latency, throughput = cell["metrics"]["latency_ms_median"], cell["metrics"]["throughput_ips"]
        assert latency["regressed"] is True and throughput["regressed"] is False  # throughput not gated here
        significance = latency["significance"]
        assert significance["significant"] is True and significance["keys"] == ["latency_ms_repeat95"] * 2
        assert significance["interval_a"][1] < significance["interval_b"][0]
        assert 0 < significance["margin"] < latency["b"] - latency["a"]
        assert throughput["significance"]["interval_b"][1] < throughput["significance"]["interval_a"][0]
        assert cell["metrics"]["peak_mem_bytes"]["regressed"] is False and "significance" not in cell["metrics"]["peak_mem_bytes"]


def test_the_regression_line_says_why(runs, capsys):
    assert main(["compare", str(runs["a"]), str(runs["slower20"]), "--fail", "throughput"]) == 1
    err = capsys.readouterr().err
    assert "past --fail throughput and significant (by more than " in err and "the 95 % repeat intervals [" in err
    assert "pooled)" in err


def test_a_run_saved_without_intervals_is_judged_by_the_limit_alone(runs, tmp_path):
    data = json.loads(runs["slower20"].read_text())
    for bench in data["benchmarks"]:
        for key in ("latency_ms_repeat95", "latency_ms_ci95"):
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

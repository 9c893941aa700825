"""--emulate through real pytest runs: predicted figures saved beside the measured ones, judged by the budgets."""

from __future__ import annotations

import json

from test_plugin_budgets import FAST, TINY


def run(pytester, tmp_path, *args):
    pytester.makepyfile(TINY.format(marker=""))
    out = tmp_path / "run.json"
    result = pytester.runpytest(*FAST, f"--benchmark-json={out}", *args)
    info = json.loads(out.read_text())["benchmarks"][0]["extra_info"] if out.exists() else None
    return result, info


def test_an_emulated_cell_saves_the_targets_predicted_figures_beside_the_measured_ones(pytester, tmp_path):
    result, info = run(pytester, tmp_path, "--emulate", "jetson-nano")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["edgeprof: device cpu (*); emulating jetson-nano: its figures are predicted*"])
    assert info["target"] == "jetson-nano" and info["target_precision"] == "fp32"
    assert info["target_peak_mem_bytes"] == info["peak_mem_bytes"] + 1_000_000_000  # the Nano's CUDA context
    assert info["target_latency_ms"] > 0 and info["target_latency_method"].startswith("roofline per kernel")
    (verdict,) = info["budget_verdicts"]  # the Nano's usable memory is the default memory budget
    assert verdict["predicted"] is True and verdict["limit"] == 2_600_000_000
    assert verdict["measured"] == info["target_peak_mem_bytes"]


def test_a_budget_the_target_would_break_fails_the_cell_as_predicted(pytester, tmp_path):
    pytester.makeini("[pytest]\nedgeprof_emulate = jetson-nano\n")
    result, info = run(pytester, tmp_path, "--budget", "memory=500MB")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*predicted peak memory 1 GB > budget 500 MB (tiny-base-b2-32x32 on jetson-nano "
                                 "(emulated on cpu))"])
    assert info["outcome"] == "over-budget" and info["peak_mem_bytes"] < 500_000_000


def test_a_profile_without_figures_is_one_usage_error(pytester):
    pytester.makepyfile(TINY.format(marker=""))
    result = pytester.runpytest(*FAST, "--emulate", "jetson-xavier-nx")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--emulate/edgeprof_emulate: --emulate jetson-xavier-nx: no published figures "
                                 "gathered for jetson-xavier-nx (peak FLOP/s per precision, *accepted: host, *"])

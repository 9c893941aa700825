"""--emulate through real pytest runs: predicted figures saved beside the measured ones, judged by the budgets."""

from __future__ import annotations

import json
import re

import pytest
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
    assert info["target_latency_ms"] > 0 and info["target_latency_method"].startswith("predicted, not measured")
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


def test_a_power_mode_needs_a_board_and_one_the_board_has(pytester):
    pytester.makepyfile(TINY.format(marker=""))
    result = pytester.runpytest(*FAST, "--power-mode", "5W")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--power-mode/edgeprof_power_mode: a board's power mode is predicted only; give it "
                                 "with --emulate BOARD"])
    result = pytester.runpytest(*FAST, "--emulate", "jetson-nano", "--power-mode", "20W")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown --power-mode '20W' for jetson-nano; accepted: MAXN, 5W*"])


def test_a_cell_this_host_cannot_run_saves_the_boards_prediction_only(pytester, tmp_path, monkeypatch):
    from test_plugin_variants import SUITE

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*FAST, "--models", "squeezenet1_1", "--batch-sizes", "1", "--shapes", "64",
                                "--runtime", "tensorrt", "--emulate", "jetson-nano", "--benchmark-json=run.json", "-rs")
    result.assert_outcomes(skipped=1)  # TensorRT on a CPU: not run here, its Nano figures predicted
    result.stdout.fnmatch_lines(["SKIPPED * TensorRT runs on NVIDIA GPUs; cpu is not one; not run here: its "
                                 "jetson-nano figures are predicted only (target_ keys)"])
    (cell,) = json.loads((pytester.path / "run.json").read_text())["edgeprof"]["untimed_cells"]
    info = cell["extra_info"]
    assert info["outcome"] == "skipped" and info["target"] == "jetson-nano" and info["runtime"] == "tensorrt"
    assert info["target_latency_ms"] > 0 and info["target_latency_method"].startswith("predicted, not measured: fused")
    assert "latency_ms" not in info and "peak_mem_bytes" not in info  # no host figure: nothing ran here


TWO_BATCHES = """
import pytest
from torch import nn

@pytest.mark.parametrize("batch", [1, 64])
def test_net(edgeprof, batch):
    edgeprof(nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU()), batch_size=batch, input_shape=(3, 64, 64), name="net")
"""


def test_the_summary_limits_and_report_answer_for_the_target_with_the_hosts_figures_beside(pytester, tmp_path, capsys,
                                                                                           monkeypatch):
    from pytest_edgeprof.cli import main

    monkeypatch.setenv("COLUMNS", "160")
    pytester.makepyfile(TWO_BATCHES)
    out = tmp_path / "run.json"
    result = pytester.runpytest(*FAST, f"--benchmark-json={out}", "--emulate", "jetson-nano", "--budget", "memory=1.01GB")
    result.assert_outcomes(passed=1, failed=1)  # b64 holds 16 MB more than b1: over 1.01 GB with the Nano's 1 GB context
    result.stdout.fnmatch_lines([
        "net-base-b64-64x64  predicted peak memory 1.0* GB > budget 1.01 GB",
        "*edgeprof: jetson-nano (emulated on cpu)*",
        "cell * median latency * p99 * pred. latency * peak memory * pred. memory * verdict",
        "recommended for jetson-nano (best predicted throughput within every budget): net-base-b1-64x64",
        "  *predicted peak memory 1 GB*",
        "  net-base-b64-64x64: predicted peak memory 1.0* GB > budget 1.01 GB",
    ])
    capsys.readouterr()  # pytester's in-process run wrote there too
    assert main(["limits", str(out)]) == 0
    text = capsys.readouterr().out
    assert "emulated: jetson-nano; budgets judged its predicted figures" in text
    assert re.search(r"b64 +predicted peak memory 1\.0\d GB > budget 1\.01 GB", text), text
    assert "recommended for jetson-nano (best predicted throughput within every budget): net-base-b1-64x64" in text
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "predicted_vs_measured.png").stat().st_size > 0


def test_emulate_check_holds_the_hosts_predicted_latencies_against_the_measured_ones(pytester, tmp_path, capsys):
    from pytest_edgeprof.cli import main

    pytester.makepyfile(TWO_BATCHES)
    out = tmp_path / "run.json"
    pytester.runpytest(*FAST, f"--benchmark-json={out}", "--emulate", "host").assert_outcomes(passed=2)
    info = json.loads(out.read_text())["benchmarks"][0]["extra_info"]
    assert info["target"] == "host" and info["target_peak_mem_bytes"] == info["peak_mem_bytes"]  # no overhead on the host
    capsys.readouterr()  # pytester's in-process run wrote there too
    assert main(["emulate-check", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "host" and len(report["cells"]) == 2
    for cell in report["cells"]:
        assert cell["error"] == pytest.approx(cell["predicted_ms"] / cell["measured_ms"] - 1)
    assert set(report["within"]) == {"0.10", "0.25", "0.50"}
    assert main(["emulate-check", str(out)]) == 0
    assert "predicted for host (roofline per kernel" in capsys.readouterr().out


WIDE = """
from torch import nn

def test_wide(edgeprof):
    edgeprof(nn.Conv2d(3, 64, 3), batch_size=32, input_shape=(3, 512, 512), name="wide")
"""


def test_isolated_on_a_cpu_a_cell_runs_out_of_the_targets_memory_for_real(pytester, tmp_path):
    pytester.makepyfile(WIDE)  # its 32x64x510x510 output alone is 2.13 GB: more than the Nano's 1.6 GB beside its context
    out = tmp_path / "run.json"
    result = pytester.runpytest(*FAST, f"--benchmark-json={out}", "--emulate", "jetson-nano", "--isolate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["peak memory: out of memory at batch 32 (tried to allocate 2.13 GB; the child's memory "
                                 "limit is 1.6 GB) (wide-base-b32-512x512 on jetson-nano (emulated on cpu))"])
    (line,) = (pytester.path / ".benchmarks" / "edgeprof-journal.jsonl").read_text().splitlines()
    assert json.loads(line)["extra_info"]["outcome"] == "out-of-memory"


def _session(**settings):  # an engaged session as the plugin makes it, its emulation plugin attached where asked
    from pytest_edgeprof.plugin.features.emulation import EmulationPlugin
    from pytest_edgeprof.plugin.options import Settings
    from pytest_edgeprof.plugin.session import EdgeprofSession

    session = EdgeprofSession(Settings(device="cpu", isolate=True, **settings))
    if session.settings.emulate is not None:
        emulation = EmulationPlugin(session.settings.emulate, session)
        session.features.add(emulation)
        session.features.emulation = emulation
    return session


def test_the_cell_key_and_the_isolated_childs_memory_follow_the_emulated_target():
    from pytest_edgeprof.measurement import Cell

    cell = Cell("net", "base", 1, (3, 8, 8))
    plain = _session()
    nano = _session(emulate="jetson-nano")
    plain_key, nano_key = (s.cell_key("t", cell, {"model": "net"}, evaluated=False) for s in (plain, nano))
    assert "emulate" not in plain_key.conditions and nano_key.conditions["emulate"] == "jetson-nano"
    assert plain_key.text != nano_key.text  # --resume never replays a cell measured without the prediction
    assert plain.isolate_memory_limit() is None
    assert nano.isolate_memory_limit() == 2_600_000_000 - 1_000_000_000  # usable memory less the CUDA context
    chosen = _session(emulate="jetson-nano", isolate_memory_limit=10**9)
    assert chosen.isolate_memory_limit() == 10**9


def test_host_is_emulated_at_each_precision_the_peak_probe_measures(tmp_path, monkeypatch):
    from torch import nn

    from pytest_edgeprof.measure.emulation import predict_cell
    from pytest_edgeprof.measurement import Cell

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # a real probe, in a cache of its own
    target = _session(emulate="host", precisions=("fp32", "fp16")).features.emulation.target
    assert set(target.peak_flops) == {"fp32", "fp16"} and all(v > 0 for v in target.peak_flops.values())
    cell = Cell("net", "base", 1, (3, 8, 8), precision="fp16")
    prediction = predict_cell(nn.Conv2d(3, 4, 3), cell, None, target, "fp16")
    assert prediction.precision == "fp16" and prediction.latency_ms > 0


# Any test suite: the combination is refused before collection, so nothing is quantized or measured.
MEASURED_MARK = """
from pathlib import Path

def test_never(edgeprof):
    Path("measured").write_text("ran")
"""


@pytest.mark.parametrize("target, precision, has", [("jetson-nano", "bf16", "fp32, fp16"),
                                                   ("host", "int8", "fp32")])
def test_a_precision_the_target_has_no_figures_for_is_a_usage_error_before_anything_runs(pytester, target, precision,
                                                                                         has):
    pytester.makepyfile(MEASURED_MARK)
    result = pytester.runpytest(*FAST, "--emulate", target, "--precision", f"fp32,{precision}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert f"--emulate {target}: no peak FLOP/s for {precision}" in line and f"(it has {has})" in line
    assert not (pytester.path / "measured").exists()

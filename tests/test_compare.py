"""edgeprof compare on real saved runs, and the --fail gate."""

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edgeprof.cli import main
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import METRICS
from pytest_edgeprof.runs.compare import Change, compare_runs, parse_fail_spec, regressions, render_table
from pytest_edgeprof.runs.saved import load_run

SCRATCH_ID = "scratch-base-b1-32x32"


# --- the bar: a model that really holds more memory --------------------------------------------------


def test_compare_shows_both_runs_and_memory_growth_fails_the_gate(scratch_storage, capsys):
    code = main(["compare", "1", "2", "--storage", str(scratch_storage), "--fail", "memory:5%"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "A: " in out and "0001_" in out and "B: " in out and "0002_" in out and "device cpu" in out
    row = next(line for line in out.splitlines() if "peak memory" in line)
    a, b = (load_run(n, scratch_storage).cells[SCRATCH_ID].value("memory") for n in ("1", "2"))
    assert b > a * 1.05  # the second model really holds more
    assert f"{(b - a) / a * 100:+.1f} %" in row
    assert f"REGRESSION {SCRATCH_ID}: peak memory" in err and "past --fail memory:5%" in err
    assert "1 regression(s)" in err


def test_a_run_compared_with_itself_passes_the_gate(scratch_storage, capsys):
    code = main(["compare", "2", "2", "--storage", str(scratch_storage), "--fail", "memory:5%,latency:10%,top1:-0.5"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert SCRATCH_ID in out and "+0.0 %" in out


def test_less_memory_is_not_a_regression(scratch_storage, capsys):
    assert main(["compare", "2", "1", "--storage", str(scratch_storage), "--fail", "memory:5%"]) == 0


def test_gate_in_code_names_cell_and_metric(scratch_storage):
    run_a, run_b = load_run("1", scratch_storage), load_run("2", scratch_storage)
    [found] = regressions(run_a, run_b, parse_fail_spec("memory:5%"))
    assert found.cell_id == SCRATCH_ID and found.metric == "memory" and found.excess > 5
    assert regressions(run_a, run_b, parse_fail_spec("memory:1000%")) == []
    assert regressions(run_a, run_b, []) == []


# --- what the table shows ------------------------------------------------------------------------


def test_piped_output_is_plain_and_terminal_output_is_coloured(scratch_storage, capsys):
    main(["compare", "1", "2", "--storage", str(scratch_storage)])
    assert "\033[" not in capsys.readouterr().out
    comparison = compare_runs(load_run("1", scratch_storage), load_run("2", scratch_storage))
    coloured = render_table(comparison, color=True)
    memory_line = next(line for line in coloured.splitlines() if "peak memory" in line)
    assert memory_line.startswith("\033[31m")  # more memory is worse: red


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_terminal_gets_ansi_colours(scratch_storage):
    leader, follower = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # this checkout's package
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_edgeprof.cli", "compare", "1", "2", "--storage", str(scratch_storage)],
        stdout=follower, stderr=subprocess.PIPE, env=env, timeout=120,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.returncode == 0, proc.stderr
    assert b"\033[31m" in b"".join(chunks)


def test_cells_in_one_run_only_are_listed(grid_run, scratch_storage, capsys):
    code = main(["compare", str(grid_run), "1", "--storage", str(scratch_storage)])
    out = capsys.readouterr().out
    assert code == 0  # no gate asked for: the table says what each run holds
    assert "only in A (5): tiny-base-b1-48x48" in out
    assert f"only in B (1): {SCRATCH_ID}" in out


def _as_precision(run: Path, precision: str, target: Path) -> Path:
    """STAND-IN: the saved run as if measured in another precision (a real fp16 grid takes minutes)."""
    data = json.loads(run.read_text())
    for bench in data["benchmarks"]:
        bench["extra_info"]["precision"] = precision
    target.write_text(json.dumps(data))
    return target


def test_a_gate_over_no_common_cell_is_a_usage_error_naming_configs(grid_run, tmp_path, capsys):
    fp16 = _as_precision(grid_run, "fp16", tmp_path / "fp16.json")
    code = main(["compare", str(grid_run), str(fp16), "--fail", "latency:10%"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("edgeprof: error: ") and "have no cell in common" in line
    assert "(fp32-eager)" in line and "(fp16-eager)" in line
    assert "--configs fp32-eager,fp16-eager" in line
    # what the line proposes gates them cell by cell
    assert main(["compare", str(grid_run), str(fp16), "--fail", "latency:10%", "--configs", "fp32-eager,fp16-eager"]) == 0
    assert "tiny-base-b1-48x48" in capsys.readouterr().out


def test_runs_from_different_devices_compare_with_devices_in_header(scratch_storage, tmp_path, capsys):
    # Hand-edited: the same run as if saved on a Jetson, since this host has none.
    run_b = next((scratch_storage).glob("*/0002_*.json"))
    data = json.loads(run_b.read_text())
    data["machine_info"]["edgeprof"]["device"] = "jetson-nano"
    for bench in data["benchmarks"]:
        bench["extra_info"]["device"] = "jetson-nano"
    jetson = tmp_path / "jetson.json"
    jetson.write_text(json.dumps(data))
    assert main(["compare", "1", str(jetson), "--storage", str(scratch_storage)]) == 0
    out = capsys.readouterr().out
    assert "(device cpu" in out and "(device jetson-nano" in out
    assert "different devices (cpu vs jetson-nano)" in out
    assert SCRATCH_ID in out


def test_csv_and_json(scratch_storage, capsys):
    main(["compare", "1", "2", "--storage", str(scratch_storage), "--csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    memory = next(r for r in rows if r["metric"] == "peak_mem_bytes")
    assert memory["cell"] == SCRATCH_ID and float(memory["b"]) > float(memory["a"]) and float(memory["change_percent"]) > 5
    assert {r["metric"] for r in rows} >= {"latency_ms_median", "throughput_ips", "peak_mem_bytes"}

    assert main(["compare", "1", "2", "--storage", str(scratch_storage), "--json", "--fail", "memory:5%"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["a"]["device"] == "cpu" and report["only_in_a"] == [] and report["only_in_b"] == []
    cell = report["cells"][0]
    assert cell["id"] == SCRATCH_ID and cell["metrics"]["peak_mem_bytes"]["change_percent"] > 5
    assert report["regressions"][0]["cell"] == SCRATCH_ID and report["regressions"][0]["metric"] == "memory"


def test_out_of_memory_in_b_is_a_regression(scratch_storage, tmp_path):
    # Hand-edited: run 0002's cell saved as it would be had it gone out of memory.
    data = json.loads(next(scratch_storage.glob("*/0002_*.json")).read_text())
    info = data["benchmarks"][0]["extra_info"]
    for key in [k for k in info if k.startswith(("latency", "throughput", "peak_mem"))]:
        del info[key]
    info["outcome"] = "out-of-memory"
    path = tmp_path / "oom.json"
    path.write_text(json.dumps(data))
    [found] = regressions(load_run("1", scratch_storage), load_run(path), parse_fail_spec("latency:10%"))
    assert found.metric == "outcome" and "out of memory in B" in found.line() and math.isinf(found.excess)


# --- the --fail spec ----------------------------------------------------------------------------------


def test_fail_spec_reads_each_metric_with_its_unit():
    thresholds = {t.metric.name: t for t in parse_fail_spec("latency:10%, memory:5%,energy:10%,top1:-0.5,throughput:-3%")}
    assert (thresholds["latency"].limit, thresholds["latency"].unit) == (10.0, "%")
    assert (thresholds["top1"].limit, thresholds["top1"].unit) == (0.5, "pp")
    assert thresholds["throughput"].limit == 3.0
    assert parse_fail_spec("top1:0.5pp")[0].limit == 0.5
    assert parse_fail_spec("flops:+2%")[0].limit == 2.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "bad --fail ''"),
        ("memory", "bad --fail item 'memory'.*expected METRIC:LIMIT"),
        ("speed:10%", "bad --fail item 'speed:10%'.*metrics: memory, latency, energy, throughput, flops, top1"),
        ("latency:10", r"latency takes percent, like 10% \(e.g. latency:10%\)"),
        ("latency:ten%", "latency takes percent"),
        ("top1:1%", "top1 takes percentage points"),
        ("latency:-10%", "latency gets worse when it grows, so its limit is \\+N or N"),
        ("throughput:+5%", "throughput gets worse when it falls, so its limit is -N or N"),
        ("memory:5%,memory:6%", "memory given twice"),
    ],
)
def test_bad_fail_spec_is_one_usage_error(spec, message):
    with pytest.raises(UsageError, match=message) as error:
        parse_fail_spec(spec)
    assert "\n" not in str(error.value)


def test_bad_fail_spec_exits_2_before_reading_runs(capsys):
    assert main(["compare", "no-such-a", "no-such-b", "--fail", "latency:10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgeprof: error: bad --fail item 'latency:10'") and err.count("\n") == 1


def test_unreadable_run_exits_2_naming_it(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["compare", str(broken), str(broken)]) == 2
    assert f"{broken} is not a pytest-benchmark run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, a, b, spec, regressed",
    [
        ("latency", 10.0, 11.5, "latency:10%", True),
        ("latency", 10.0, 10.9, "latency:10%", False),
        ("latency", 10.0, 5.0, "latency:10%", False),
        ("throughput", 100.0, 85.0, "throughput:10%", True),  # less throughput is worse
        ("throughput", 100.0, 150.0, "throughput:10%", False),
        ("energy", 0.2, 0.25, "energy:10%", True),
        ("top1", 70.0, 69.4, "top1:-0.5", True),  # percentage points, not percent
        ("top1", 70.0, 69.6, "top1:-0.5", False),
        ("top1", 70.0, 75.0, "top1:-0.5", False),
        ("memory", 0.0, 1.0, "memory:5%", True),  # from nothing to something
    ],
)
def test_direction_per_metric(name, a, b, spec, regressed):
    [threshold] = parse_fail_spec(spec)
    assert threshold.broken_by(Change(METRICS[name], a, b)) is regressed


def test_compare_copy_of_storage_is_untouched(scratch_storage, tmp_path):
    # compare only reads: the storage is byte-for-byte the same afterwards
    copy = tmp_path / "copy"
    shutil.copytree(scratch_storage, copy)
    main(["compare", "1", "2", "--storage", str(copy), "--csv"])
    assert sorted(p.read_bytes() for p in copy.rglob("*.json")) == sorted(p.read_bytes() for p in scratch_storage.rglob("*.json"))

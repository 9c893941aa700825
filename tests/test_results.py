"""Reading saved runs: real pytest-benchmark files found the way its compare finds them; foreign or
corrupted files rejected with one line naming the file."""

import json
import shutil

import pytest

from pytest_edgeprof.compat.pytest_benchmark import machine_id as _machine_id
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.runs.saved import load_run


def test_json_file_becomes_cells_keyed_by_id(grid_run):
    run = load_run(grid_run)
    assert run.path == grid_run and run.device == "cpu" and run.datetime
    assert run.machine_info["edgeprof"]["device"] == "cpu"
    assert len(run.cells) == 5
    saved = run.cells["tiny-p50-b2-48x48"]
    assert (saved.cell.variant, saved.cell.batch_size, saved.cell.input_shape) == ("p50", 2, (3, 48, 48))
    assert saved.outcome == "passed"
    # the latency is pytest-benchmark's own median of the same rounds, in ms
    assert saved.value("latency") == pytest.approx(saved.stats["median"] * 1e3)
    assert saved.value("latency_ms_median") == saved.value("latency")
    assert saved.value("memory") > 0 and saved.value("flops") > 0
    assert saved.value("top1") is None  # not measured in this run
    assert [v.budget.metric for v in saved.measurement.verdicts] == ["memory"] and saved.measurement.budgets["memory"].endswith("iB")  # the device's


def test_cells_without_timings_are_read_from_the_edgeprof_section(grid_run, tmp_path):
    # Hand-edited: an out-of-memory cell and a skipped one where the plugin lists cells that have no
    # timings (pytest-benchmark saves only timed benchmarks).
    data = json.loads(grid_run.read_text())
    identity = {"model": "tiny", "variant": "base", "input_shape": [3, 48, 48], "device": "cpu"}
    data["edgeprof"] = {"untimed_cells": [
        {"fullname": "t::oom", "extra_info": dict(identity, batch_size=8, outcome="out-of-memory", error="tried to allocate 3 GB")},
        dict(identity, batch_size=16, outcome="skipped", error="exceeds capacity (b=8 ran out of memory)"),
    ]}
    path = tmp_path / "untimed.json"
    path.write_text(json.dumps(data))
    cells = load_run(path).cells
    assert cells["tiny-base-b8-48x48"].outcome == "out-of-memory" and cells["tiny-base-b8-48x48"].test == "t::oom"
    assert cells["tiny-base-b16-48x48"].outcome == "skipped" and cells["tiny-base-b16-48x48"].value("latency") is None
    data["edgeprof"] = {"untimed_cells": "x"}
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="'edgeprof' section has no 'untimed_cells' list"):
        load_run(path)


def test_run_number_name_and_latest_are_found_like_pytest_benchmark_compare(scratch_storage, tmp_path):
    storage = tmp_path / "storage"
    shutil.copytree(scratch_storage, storage)
    machine = storage / _machine_id()
    first, second = sorted(machine.glob("*.json"))
    assert first.name.startswith("0001_") and second.name.startswith("0002_")
    assert load_run("1", storage).path == first
    assert load_run("0002", storage).path == second
    assert load_run("latest", storage).path == second
    assert load_run(f"{_machine_id()}/0001", storage).path == first
    assert load_run("1", f"file://{storage}").path == first  # --benchmark-storage's URI form
    named = machine / "0003_baseline.json"
    shutil.copy(first, named)  # as --benchmark-save=baseline names it
    assert load_run("baseline", storage).path == named
    assert load_run("latest", storage).path == named


def test_a_number_in_several_machines_folders_prefers_this_machine(scratch_storage, tmp_path):
    storage = tmp_path / "storage"
    shutil.copytree(scratch_storage, storage)
    other = storage / "Linux-CPython-3.9-64bit"
    other.mkdir()
    shutil.copy(next((storage / _machine_id()).glob("0001_*.json")), other / "0001_other.json")
    assert load_run("0001", storage).path.parent.name == _machine_id()
    shutil.rmtree(storage / _machine_id())
    (other / "0001_again.json").write_text((other / "0001_other.json").read_text())
    shutil.copytree(other, storage / "Darwin-CPython-3.11-64bit")
    with pytest.raises(UsageError, match="several machines.*write MACHINE/0001"):
        load_run("0001", storage)


@pytest.mark.parametrize(
    "ref, message",
    [
        ("0009", r"no run '0009': not a file, and no saved run under .* matches it \(latest: .*0002_"),
        ("nosuchname", r"no run 'nosuchname'"),
    ],
)
def test_unknown_ref_names_what_exists(scratch_storage, ref, message):
    with pytest.raises(UsageError, match=message):
        load_run(ref, scratch_storage)


def test_no_storage_says_how_to_save_runs(tmp_path):
    with pytest.raises(UsageError, match="no saved runs under .*--benchmark-autosave"):
        load_run("latest", tmp_path / ".benchmarks")


def test_plain_pytest_benchmark_file_has_no_edgeprof_cells(plain_run):
    with pytest.raises(UsageError, match=rf"{plain_run.name} holds no edgeprof cells: none of its 1 benchmarks"):
        load_run(plain_run)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"benchmarks": [', "is not a pytest-benchmark run: not valid JSON"),
        ("", "not valid JSON"),
        ('[1, 2]', "no 'benchmarks' list"),
        ('{"machine_info": {}}', "no 'benchmarks' list"),
        ('{"benchmarks": ["x"]}', "benchmark #0 is a str, not an object"),
        ('{"benchmarks": [{"fullname": "t::a", "extra_info": {"model": "m", "variant": "base", "batch_size": 1, '
         '"input_shape": [3, 32]}}]}', "benchmark t::a: not an edgeprof cell"),
        ('{"benchmarks": [{"fullname": "t::a", "extra_info": {"model": "m", "variant": "base", "batch_size": 1, '
         '"input_shape": [3, 32, 32], "latency_ms_median": "fast"}}]}', "latency_ms_median is 'fast', not a number"),
    ],
)
def test_corrupted_or_foreign_files_are_usage_errors_naming_the_file(tmp_path, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as error:
        load_run(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_binary_garbage_is_a_usage_error(tmp_path):
    path = tmp_path / "0001_x.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(UsageError, match="0001_x.json"):
        load_run(path)


def test_failed_cell_without_latency_is_read(grid_run, tmp_path):
    # Hand-edited: a cell saved the way a cell that went out of memory is expected to be (outcome,
    # no latency, no stats), beside the real ones.
    data = json.loads(grid_run.read_text())
    info = dict(data["benchmarks"][0]["extra_info"], batch_size=64, outcome="out-of-memory")
    for key in [k for k in info if k.startswith(("latency", "throughput", "peak_mem"))]:
        del info[key]
    data["benchmarks"].append({"fullname": "test_grid.py::test_grid[oom]", "extra_info": info})
    path = tmp_path / "with_oom.json"
    path.write_text(json.dumps(data))
    saved = load_run(path).cells[Cell.from_extra_info(info).id]
    assert saved.outcome == "out-of-memory"
    assert saved.value("latency") is None and saved.value("throughput") is None and saved.stats == {}


def test_same_cell_twice_in_one_run_is_kept_apart(grid_run, tmp_path):
    data = json.loads(grid_run.read_text())
    twin = dict(data["benchmarks"][0], fullname="test_other.py::test_grid")
    data["benchmarks"].append(twin)
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(data))
    cells = load_run(path).cells
    assert len(cells) == len(data["benchmarks"])
    assert any(key.endswith("[test_other.py::test_grid]") for key in cells)

"""A journal that cannot lose a cell, and runs edgeprof refuses rather than measures wrongly.

Each test is one row of the resume issue's table, tried as a user would: real pytest runs of a small
module, the journal and the saved JSON read back.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edgeprof.runs.journal import Journal
from pytest_edgeprof.runs.saved import load_run

FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3",
        "-p", "no:cacheprovider"]

TWO_CELLS = """
import pytest
from torch import nn

@pytest.mark.parametrize("batch", [1, 2])
def test_tiny(edgeprof, batch):
    edgeprof(nn.Sequential(nn.Conv2d(3, 4, 3)), batch_size=batch, input_shape=(3, 16, 16), name="net")
"""


def _journal(pytester: pytest.Pytester) -> Path:
    return pytester.path / ".benchmarks" / "edgeprof-journal.jsonl"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_untimed_run_resumed_is_measured_and_judged(pytester):
    pytester.makepyfile(TWO_CELLS)
    pytester.runpytest(*FAST, "--benchmark-disable").assert_outcomes(passed=2)
    resumed = pytester.runpytest(*FAST, "--resume", "--budget", "latency=5s", "--benchmark-json=out.json")
    resumed.assert_outcomes(passed=2)
    saved = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert len(saved) == 2 and all(b["stats"]["rounds"] >= 3 for b in saved)
    assert all(v["metric"] == "latency" and v["status"] == "within"
               for b in saved for v in b["extra_info"]["budget_verdicts"] if v["metric"] == "latency")


def test_a_line_cut_by_a_kill_is_cut_away_before_the_next_one_is_written(pytester):
    pytester.makepyfile(TWO_CELLS)
    pytester.runpytest(*FAST).assert_outcomes(passed=2)
    journal = _journal(pytester)
    first, second = journal.read_bytes().splitlines()
    journal.write_bytes(first + b"\n" + second[: len(second) // 2])  # the kill came mid-write
    pytester.runpytest(*FAST, "--resume", "-W", "ignore::UserWarning").assert_outcomes(passed=2)
    lines = _lines(journal)  # every line parses: the new one did not land on the fragment
    assert [line["extra_info"]["batch_size"] for line in lines] == [1, 2]


MARKS_ITS_CALLS = """
from pathlib import Path
from torch import nn

class Marks(nn.Module):
    '''Leaves the file MEASURED beside this module when it runs.'''
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        Path(__file__).with_name("MEASURED").touch()
        return self.conv(x)

def test_marks(edgeprof):
    edgeprof(Marks(), batch_size=1, input_shape=(3, 16, 16), name="net")
"""


@pytest.mark.parametrize("resume", [[], ["--resume"]], ids=["new run", "resumed run"])
def test_a_second_run_on_a_journal_in_use_stops_before_it_measures_anything(pytester, resume):
    pytester.makepyfile(TWO_CELLS)
    pytester.runpytest(*FAST).assert_outcomes(passed=2)
    pytester.makepyfile(MARKS_ITS_CALLS)
    holder = Journal(_journal(pytester))
    holder.hold()  # another run holds it
    try:
        result = pytester.runpytest(*FAST, *resume)
    finally:
        holder.release()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: journal *edgeprof-journal.jsonl is in use by another run (pid {os.getpid()})*"])
    assert not (pytester.path / "MEASURED").exists()
    assert len(_lines(_journal(pytester))) == 2  # nothing moved aside, nothing lost


def test_a_lock_that_cannot_be_written_is_one_line_before_anything_is_measured(pytester):
    """A full disk for the lock's pid, made with a file-size limit of 0 in a child: one line, no cell, no
    traceback, and not a run that locked itself out ("in use by another run")."""
    pytester.makepyfile(TWO_CELLS)

    def no_file_may_grow() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-s", *FAST], cwd=pytester.path, env=env,  # -s: pytest's
                          capture_output=True, text=True, preexec_fn=no_file_may_grow, timeout=300)  # capture files
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert "ERROR: cannot write the journal's lock .benchmarks/edgeprof-journal.jsonl.lock: File too large" in done.stderr
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "in use by another run" not in output
    assert " passed" not in done.stdout and " failed" not in done.stdout


def test_a_run_without_edgeprof_tests_makes_no_journal(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    pytester.runpytest(*FAST).assert_outcomes(passed=1)
    assert list((pytester.path / ".benchmarks").glob("edgeprof-journal*")) == []  # (pytest-benchmark makes the folder)


FAILING = """
import torch
from torch import nn

class Raises(nn.Module):
    def forward(self, x):
        raise ValueError("no forward for you")

class TwoInputs(nn.Module):
    def forward(self, x, y):
        return x + y

def test_raises(edgeprof):
    edgeprof(Raises(), batch_size=1, input_shape=(3, 8, 8), name="raises")

def test_two_inputs(edgeprof):
    edgeprof(TwoInputs(), batch_size=1, input_shape=(3, 8, 8), name="twoinputs")

def test_plain_function(edgeprof):
    edgeprof(lambda x: x * 2, batch_size=1, input_shape=(3, 8, 8), name="plain")

def test_fine(edgeprof):
    edgeprof(nn.Conv2d(3, 4, 3), batch_size=1, input_shape=(3, 8, 8), name="fine")
"""


def test_every_failure_is_a_recorded_cell_and_the_session_goes_on(pytester):
    pytester.makepyfile(FAILING)
    result = pytester.runpytest(*FAST, "--benchmark-json=out.json")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "*ValueError: no forward for you (raises-base-b1-8x8 on cpu)*",
        "*TypeError: *forward() missing 1 required positional argument: 'y' (twoinputs-base-b1-8x8 on cpu)*",
        "*AttributeError: 'function' object has no attribute 'eval' (plain-base-b1-8x8 on cpu)*",
    ])
    journal = {line["extra_info"]["model"]: line["outcome"] for line in _lines(_journal(pytester))}
    assert journal == {"raises": "failed", "twoinputs": "failed", "plain": "failed", "fine": "passed"}
    run = load_run(pytester.path / "out.json")
    assert {cell.measurement.cell.model: cell.outcome.value for cell in run.cells.values()} == journal


def test_a_journal_that_cannot_be_written_stops_the_run_with_one_line_and_keeps_whole_lines(pytester):
    """A full disk, made with a file-size limit in a child: the first line fits, the second does not."""
    pytester.makepyfile(TWO_CELLS)
    three_rounds = [*FAST, "--benchmark-max-time", "0.000001"]  # min_rounds (3) each: lines of one size
    pytester.runpytest(*three_rounds).assert_outcomes(passed=2)
    line_size = len(_journal(pytester).read_text().splitlines()[0]) + 1
    _journal(pytester).unlink()

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (line_size + line_size // 2, resource.RLIM_INFINITY))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", *three_rounds, "--resume"], cwd=pytester.path, env=env,
                          capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:]
    assert "cannot write the journal .benchmarks/edgeprof-journal.jsonl: File too large; net-base-b2-16x16 is not in it" in done.stdout
    assert [line["extra_info"]["batch_size"] for line in _lines(_journal(pytester))] == [1]  # whole lines only


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--prune", "0.3"], {"XDG_CACHE_HOME": "{file}"}, "the default variant cache {file}/pytest-edgeprof/variants: {file} is a file"),
        (["--resume"], {}, "the default journal .benchmarks/edgeprof-journal.jsonl: .benchmarks is a file"),
    ],
    ids=["XDG_CACHE_HOME a file", ".benchmarks a file"],
)
def test_what_cannot_be_kept_is_refused_before_anything_runs(pytester, monkeypatch, args, env, message):
    pytester.makepyfile(TWO_CELLS)
    a_file = pytester.path / ("not_a_folder" if "XDG_CACHE_HOME" in env else ".benchmarks")
    if env or "--resume" in args:
        a_file.write_text("")
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(file=a_file))
    result = pytester.runpytest(*FAST, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message.format(file=a_file)}*"])
    assert not (pytester.path / ".benchmarks" / "edgeprof-journal.jsonl").exists()


def test_the_journal_follows_the_storage_and_the_cli_reads_an_absolute_file_uri(pytester, capsys):
    from pytest_edgeprof.cli import main

    pytester.makepyfile(TWO_CELLS)
    pytester.runpytest(*FAST, "--benchmark-autosave", f"--benchmark-storage=file://{pytester.path}/runs").assert_outcomes(passed=2)
    assert len(_lines(pytester.path / "runs" / "edgeprof-journal.jsonl")) == 2  # the journal follows the storage
    assert main(["limits", "1", "--storage", f"file://{pytester.path}/runs"]) == 0
    out = capsys.readouterr().out
    assert f"run: {pytester.path}/runs/" in out and "recommended (best throughput within every budget): net-base-b" in out


ALL_FAIL = """
from torch import nn

class Raises(nn.Module):
    def forward(self, x):
        raise ValueError("no forward for you")

def test_raises(edgeprof):
    edgeprof(Raises(), batch_size=1, input_shape=(3, 8, 8), name="raises")
"""
GRID_SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""


@pytest.mark.parametrize(
    "suite, args, outcome",
    [
        pytest.param(ALL_FAIL, [], "failed", id="every cell failed"),
        pytest.param(GRID_SUITE, ["--models", "mobilenet_v3_small", "--shapes", "16", "--batch-sizes", "1",
                                  "--precision", "fp16"], "skipped", id="every cell skipped"),
    ],
)
def test_a_run_without_a_timed_cell_is_saved_with_its_untimed_cells(pytester, suite, args, outcome):
    from pytest_edgeprof.device import resolve_device
    from pytest_edgeprof.models.deploy.support import unsupported

    if outcome == "skipped" and unsupported(resolve_device("cpu"), "fp16", "eager") is None:
        pytest.skip("this CPU runs fp16, so the fp16 cell is not skipped")
    pytester.makepyfile(suite)
    pytester.runpytest(*FAST, *args, "--benchmark-json=out.json", "--benchmark-autosave",
                       f"--benchmark-storage=file://{pytester.path}/runs")
    autosaved = list((pytester.path / "runs").glob("*/*.json"))
    assert len(autosaved) == 1
    for path in [pytester.path / "out.json", *autosaved]:
        saved = json.loads(path.read_text())
        assert saved["benchmarks"] == []
        assert [cell["extra_info"]["outcome"] for cell in saved["edgeprof"]["untimed_cells"]] == [outcome]


def _lock_a_folder(journal: Path) -> None:
    journal.with_name(journal.name + ".lock").mkdir()


def _mode_000(journal: Path) -> None:
    journal.write_text("")
    journal.chmod(0)


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(_lock_a_folder, "cannot write the journal's lock {journal}.lock: Is a directory", id="its lock a folder"),
        pytest.param(os.mkfifo, "--journal/edgeprof_journal: --journal {journal}: not a regular file", id="a named pipe"),
        pytest.param(_mode_000, "--journal/edgeprof_journal: --journal {journal}: cannot read it: Permission denied",
                     id="mode 000", marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")),
    ],
)
def test_a_journal_that_cannot_be_used_is_one_line_with_resume(pytester, make, message):
    pytester.makepyfile(TWO_CELLS)
    journal = pytester.path / "j.jsonl"
    make(journal)
    result = pytester.runpytest(*FAST, "--resume", f"--journal={journal}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    result.stderr.fnmatch_lines([f"ERROR: {message.format(journal=journal)}*"])

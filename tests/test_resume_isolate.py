"""A run killed with SIGKILL, then resumed; cells isolated in child processes."""

import json
import os
import signal
import threading
import time

FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3"]
GRID = ["--models", "mobilenet_v3_small", "--batch-sizes", "1,2,3", "--shapes", "16,24"]

SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""

KILL_AFTER_THREE_CELLS = """
import os, signal

finished = []

def pytest_runtest_logreport(report):
    if report.when == "call":
        finished.append(report.nodeid)
        if len(finished) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_run_resumed_saves_every_cell_once_with_the_killed_runs_cells_unchanged(pytester):
    pytester.makepyfile(SUITE)
    pytester.makeconftest(KILL_AFTER_THREE_CELLS)
    killed = pytester.runpytest_subprocess(*FAST, *GRID, "--benchmark-json=killed.json")
    assert killed.ret == -9 and not (pytester.path / "killed.json").exists()
    journal = pytester.path / ".benchmarks" / "edgeprof-journal.jsonl"
    measured = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(measured) == 3

    pytester.makeconftest("")
    resumed = pytester.runpytest_subprocess(*FAST, *GRID, "--resume", "--benchmark-json=final.json")
    resumed.assert_outcomes(passed=6)
    final = json.loads((pytester.path / "final.json").read_text())["benchmarks"]
    ids = [b["param"] for b in final]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 6
    by_id = {b["param"]: b for b in final}
    for record in measured:
        cell_id = record["key"].split("|")[0]
        assert by_id[cell_id]["stats"]["data"] == record["latencies_s"]
        assert by_id[cell_id]["extra_info"] == record["extra_info"]
    assert len(journal.read_text().splitlines()) == 6  # the resumed run added the three it measured


def test_resume_ignores_a_cut_off_line_and_measures_that_cell(pytester):
    pytester.makepyfile(SUITE)
    grid = ["--models", "mobilenet_v3_small", "--batch-sizes", "1,2", "--shapes", "16"]
    pytester.runpytest_subprocess(*FAST, *grid).assert_outcomes(passed=2)
    journal = pytester.path / ".benchmarks" / "edgeprof-journal.jsonl"
    first, second = journal.read_bytes().splitlines()
    journal.write_bytes(first + b"\n" + second[: len(second) // 2])  # the kill came mid-write
    resumed = pytester.runpytest_subprocess(*FAST, *grid, "--resume", "-W", "always")
    resumed.assert_outcomes(passed=2)
    resumed.stdout.fnmatch_lines(["*edgeprof-journal.jsonl:2: unreadable journal line ignored*"])


def test_without_resume_a_new_journal_starts_and_the_old_one_is_kept(pytester):
    pytester.makepyfile(SUITE)
    grid = ["--models", "mobilenet_v3_small", "--batch-sizes", "1", "--shapes", "16"]
    pytester.runpytest_subprocess(*FAST, *grid).assert_outcomes(passed=1)
    pytester.runpytest_subprocess(*FAST, *grid).assert_outcomes(passed=1)
    folder = pytester.path / ".benchmarks"
    assert len((folder / "edgeprof-journal.jsonl").read_text().splitlines()) == 1
    assert len((folder / "edgeprof-journal.jsonl.prev").read_text().splitlines()) == 1


CRASHING = """
import os, signal
import torch
from torch import nn

class Crashing(nn.Module):
    '''Batch 2 kills its own process, as the kernel's out-of-memory killer would.'''
    def forward(self, x):
        if x.shape[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return x.mean(dim=(1, 2, 3))

class Hungry(nn.Module):
    '''Allocates 200 MB per image.'''
    def forward(self, x):
        return torch.ones(x.shape[0], 50_000_000).sum(dim=1)

def test_crashing(edgeprof, edgeprof_cell):
    edgeprof(Crashing(), cell=edgeprof_cell)

def test_hungry(edgeprof, edgeprof_cell):
    edgeprof(Hungry(), cell=edgeprof_cell)
"""


def test_isolated_cells_that_crash_or_run_out_of_memory_are_recorded_and_the_session_goes_on(pytester):
    pytester.makepyfile(CRASHING)
    result = pytester.runpytest(*FAST, "--models", "resnet18", "--batch-sizes", "1,2,8", "--shapes", "8",
                                "--isolate", "--isolate-memory-limit", "1GB", "--benchmark-json=run.json", "-rs")
    # crashing: b1 runs, b2's child is killed, b8 is skipped; hungry: b1 (200 MB) fits, b2 (400 MB) fits,
    # b8 (1.6 GB) is past the child's 1 GB limit
    # a SIGKILL without evidence of the out-of-memory killer is a failure naming the signal: b8 still runs
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines([
        "*child killed by SIGKILL (resnet18-base-b2-8x8 on cpu)*",
        "*peak memory: out of memory at batch 8 (tried to allocate 1.6 GB; the child's memory limit is 1 GB) "
        "(resnet18-base-b8-8x8 on cpu)*",
    ])
    saved = json.loads((pytester.path / "run.json").read_text())["benchmarks"]
    assert [(b["name"].split("[")[0], b["extra_info"]["batch_size"]) for b in saved] == [
        ("test_crashing", 1), ("test_crashing", 8), ("test_hungry", 1), ("test_hungry", 2)]
    journal = [json.loads(line) for line in (pytester.path / ".benchmarks" / "edgeprof-journal.jsonl").read_text().splitlines()]
    assert [entry["outcome"] for entry in journal] == ["passed", "failed", "passed", "passed", "passed", "out-of-memory"]
    # an isolated cell's memory is its own: 200 MB per image, plus the input and a little
    hungry_b1 = saved[2]["extra_info"]["peak_mem_bytes"]
    assert 200_000_000 <= hungry_b1 < 210_000_000


SLEEPS_ONCE = """
import os, time
from pathlib import Path
from torch import nn

PID_FILE = Path(__file__).with_name("child.pid")

class SleepsOnce(nn.Module):
    '''At batch 1, the first time: writes its process id and sleeps, to be killed from outside.'''
    def forward(self, x):
        if x.shape[0] == 1 and not PID_FILE.exists():
            PID_FILE.write_text(str(os.getpid()))
            time.sleep(120)
        return x.mean(dim=(1, 2, 3))

def test_sleeps(edgeprof, edgeprof_cell):
    edgeprof(SleepsOnce(), cell=edgeprof_cell)
"""


def _kill_when_it_writes_its_pid(pid_file) -> threading.Thread:
    """A thread of this test that sends SIGKILL to the child process once it has written its pid, as a user's kill -9."""

    def kill() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = pid_file.read_text() if pid_file.exists() else ""
            if text:
                os.kill(int(text), signal.SIGKILL)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_child_killed_by_a_user_is_a_failure_naming_the_signal_and_is_measured_again(pytester):
    pytester.makepyfile(SLEEPS_ONCE)
    grid = [*FAST, "--models", "resnet18", "--batch-sizes", "1,2", "--shapes", "8", "--isolate",
            "--benchmark-max-time", "0.000001"]
    killer = _kill_when_it_writes_its_pid(pytester.path / "child.pid")
    killed = pytester.runpytest(*grid, "-rs")
    killer.join()
    killed.assert_outcomes(passed=1, failed=1)  # b2 runs: nothing says the kill was for memory
    killed.stdout.fnmatch_lines(["*child killed by SIGKILL (resnet18-base-b1-8x8 on cpu)*"])
    assert "out-of-memory" not in killed.stdout.str() and "exceeds capacity" not in killed.stdout.str()
    journal = pytester.path / ".benchmarks" / "edgeprof-journal.jsonl"
    assert [json.loads(line)["outcome"] for line in journal.read_text().splitlines()] == ["failed", "passed"]
    resumed = pytester.runpytest(*grid, "--resume")
    resumed.assert_outcomes(passed=2)  # b1 measured again, b2 replayed
    assert [json.loads(line)["outcome"] for line in journal.read_text().splitlines()] == ["failed", "passed", "passed"]

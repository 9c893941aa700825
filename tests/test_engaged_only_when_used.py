"""edgeprof is engaged only when used (issue 22): a run that collects no edgeprof test and sets no edgeprof
option behaves exactly as if the plugin were not installed; an edgeprof test that meets an option it cannot
honour errors with the one line, not the whole session.

Real pytest runs of plain pytest-benchmark tests, with the plugin and with ``-p no:edgeprof``, under the
options that edgeprof used to refuse for every run of the environment.
"""

from __future__ import annotations

import json

import pytest

PLAIN_BENCHMARKS = """
def test_sum(benchmark):
    assert benchmark(sum, [1, 2, 3]) == 6


def test_sorted(benchmark):
    benchmark(sorted, [3, 1, 2])


def test_broken():
    assert 1 + 1 == 3
"""

EDGEPROF_CELL = """
from torch import nn


def test_cell(edgeprof):
    edgeprof(nn.Conv2d(3, 4, 3), batch_size=1, input_shape=(3, 8, 8), name="tiny")
"""

QUIET = ["-p", "no:cacheprovider"]
BRIEF = ["--benchmark-max-time=0.01", "--benchmark-min-rounds=1"]  # pytest-benchmark's own options: short rounds


def _outcome(result: pytest.RunResult) -> tuple[int, dict[str, int]]:
    counts = result.parseoutcomes()
    return int(result.ret), {kind: counts.get(kind, 0) for kind in ("passed", "failed", "errors", "skipped")}


def _run(pytester: pytest.Pytester, *args: str, subprocess: bool = False) -> pytest.RunResult:
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    return run(*QUIET, *args)


@pytest.mark.parametrize("args", [["--benchmark-timer", "time.time"], ["--benchmark-disable"]],
                         ids=["wall-clock timer", "benchmarks disabled"])
def test_plain_benchmarks_run_as_without_the_plugin(pytester, args):
    pytester.makepyfile(test_plain=PLAIN_BENCHMARKS)
    with_plugin = _run(pytester, *args, *BRIEF, "--benchmark-json=with.json")
    without = _run(pytester, *args, *BRIEF, "--benchmark-json=without.json", "-p", "no:edgeprof")
    assert _outcome(with_plugin) == _outcome(without) == (1, {"passed": 2, "failed": 1, "errors": 0, "skipped": 0})
    saved = [pytester.path / name for name in ("with.json", "without.json")]
    assert saved[0].exists() == saved[1].exists()  # pytest-benchmark writes none when disabled
    if saved[1].exists():  # neither an "edgeprof" section nor edgeprof's machine info
        runs = [json.loads(path.read_text()) for path in saved]
        assert sorted(runs[0]) == sorted(runs[1]) and sorted(runs[0]["machine_info"]) == sorted(runs[1]["machine_info"])
    assert "edgeprof:" not in with_plugin.stdout.str()


def test_plain_benchmarks_run_under_xdist_as_without_the_plugin(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_plain=PLAIN_BENCHMARKS)
    with_plugin = _run(pytester, "-n", "2", subprocess=True)
    without = _run(pytester, "-n", "2", "-p", "no:edgeprof", subprocess=True)
    assert _outcome(with_plugin) == _outcome(without) == (1, {"passed": 2, "failed": 1, "errors": 0, "skipped": 0})
    assert "edgeprof:" not in with_plugin.stdout.str() + with_plugin.stderr.str()


def test_an_edgeprof_cell_under_xdist_errors_with_the_one_line_and_the_rest_runs(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_plain=PLAIN_BENCHMARKS, test_cell=EDGEPROF_CELL)
    result = _run(pytester, "-n", "2", "-rE", subprocess=True)
    assert _outcome(result) == (1, {"passed": 2, "failed": 1, "errors": 1, "skipped": 0})
    refusal = ("-n 2: pytest-xdist runs tests in several processes, where pytest-benchmark turns itself off and cells "
               "would share the device; run edgeprof without -n")
    result.stdout.fnmatch_lines(["*ERROR at setup of test_cell*", refusal, "ERROR test_cell.py::test_cell*"])


def test_an_edgeprof_cell_under_a_cpu_time_timer_errors_with_the_one_line_and_nothing_is_journalled(pytester):
    pytester.makepyfile(test_plain=PLAIN_BENCHMARKS, test_cell=EDGEPROF_CELL)
    result = _run(pytester, "--benchmark-timer", "time.process_time", "--device", "cpu", "--no-energy")
    assert _outcome(result) == (1, {"passed": 2, "failed": 1, "errors": 1, "skipped": 0})
    refusal = ("--benchmark-timer time.process_time: edgeprof times CPU rounds as latencies, which needs a wall clock; "
               "accepted: time.perf_counter (the default)")
    result.stdout.fnmatch_lines([refusal])
    assert not (pytester.path / ".benchmarks" / "edgeprof-journal.jsonl").exists()


def test_a_plain_run_ignores_what_only_edgeprof_would_check(pytester):
    """A ``.benchmarks`` file would be a usage error for edgeprof's default journal; plain tests never see it."""
    pytester.makepyfile(test_plain=PLAIN_BENCHMARKS)
    (pytester.path / ".benchmarks").write_text("")
    assert _run(pytester, "--benchmark-disable").ret == pytest.ExitCode.TESTS_FAILED
    assert _run(pytester, "--benchmark-disable", "--resume").ret == pytest.ExitCode.USAGE_ERROR  # asked for: checked

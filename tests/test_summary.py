"""The answer at the end of every run: the table, the recommendation, what did not fit."""

from __future__ import annotations

import re

import pytest

FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.05", "--benchmark-min-rounds", "3",
        "-p", "no:cacheprovider"]

THREE_CELLS = """
import pytest
from torch import nn

@pytest.mark.parametrize("batch", [1, 2, 64])
def test_net(edgeprof, batch):
    edgeprof(nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU()), batch_size=batch, input_shape=(3, 32, 32), name="net")
"""


@pytest.fixture
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")


def _answer(result: pytest.RunResult) -> list[str]:
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "edgeprof: cpu" in line)
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith(("---", "===", "___")) or re.match(r"\d+ (passed|failed)", lines[i])), len(lines))
    return [line for line in lines[start + 1:end] if line]


def test_the_run_ends_with_a_table_the_recommendation_and_what_did_not_fit(pytester, wide_terminal):
    pytester.makepyfile(THREE_CELLS)
    # 12 rounds at least, so every cell has its interval even when a busy machine slows the calls down
    result = pytester.runpytest(*FAST, "--benchmark-min-rounds", "12", "--budget", "memory=2MB")
    result.assert_outcomes(passed=2, failed=1)
    answer = _answer(result)
    header = answer[0].split()
    assert header[0] == "cell" and header[-1] == "verdict" and "throughput" in header and "memory" in header
    rows = {line.split()[0]: line for line in answer[1:4]}
    assert set(rows) == {"net-base-b1-32x32", "net-base-b2-32x32", "net-base-b64-32x32"}
    assert rows["net-base-b64-32x32"].endswith("over budget: memory") and rows["net-base-b1-32x32"].endswith("passed")
    assert all(len(line) <= 100 for line in answer)
    assert "±" in rows["net-base-b2-32x32"]  # the median's interval, where the rounds give one (6 or more)
    assert "energy" not in answer[0]  # --no-energy: a column without a value is left out
    assert answer[4].startswith("recommended (best throughput within every budget): net-base-b")
    assert answer[-2:] == ["did not fit:", answer[-1]] and answer[-1].startswith("  net-base-b64-32x32: peak memory")


def test_quiet_keeps_the_recommendation_and_columns_are_chosen(pytester, wide_terminal):
    pytester.makepyfile(THREE_CELLS)
    quiet = _answer(pytester.runpytest(*FAST, "-q"))
    assert quiet[0].startswith("recommended (best throughput within every budget): net-base-b") and len(quiet) == 2
    chosen = _answer(pytester.runpytest(*FAST, "--edgeprof-columns", "memory,latency"))
    assert chosen[0].split() == ["cell", "peak", "memory", "median", "latency", "verdict"]


def test_a_narrow_terminal_drops_the_least_important_columns_first(pytester, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    pytester.makepyfile(THREE_CELLS)
    answer = _answer(pytester.runpytest(*FAST))
    assert answer[0].split() == ["cell", "median", "latency", "throughput", "verdict"]
    assert all(len(line) <= 60 for line in answer[:4])


@pytest.mark.parametrize("isolation", [[], ["--isolate"]], ids=["in-process", "isolated"])
def test_untimed_runs_still_show_what_was_measured(pytester, wide_terminal, isolation):
    pytester.makepyfile(THREE_CELLS)
    result = pytester.runpytest(*FAST, "--benchmark-disable", *isolation)
    assert "was not used at all" not in result.stdout.str()  # the one untimed call counts as the fixture's use
    answer = _answer(result)
    row = next(line for line in answer if line.startswith("net-base-b64-32x32"))
    assert " MB " in row or " kB " in row  # peak memory was measured without timing
    assert answer[4].startswith("recommended: none: no cell was timed")


def test_a_bad_column_is_one_usage_error(pytester):
    pytester.makepyfile(THREE_CELLS)
    result = pytester.runpytest(*FAST, "--edgeprof-columns", "latency,speed")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --edgeprof-columns/edgeprof_columns: --edgeprof-columns 'latency,speed': unknown column 'speed'; accepted: latency, p99, *"])

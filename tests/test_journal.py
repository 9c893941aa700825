import json
import os
import signal

import pytest

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Cell, Latency, Measurement
from pytest_edgeprof.runs.journal import Journal, JournalEntry, JournalWarning, parse_journal_path


def entry(cell_id: str, median: float = 0.01) -> JournalEntry:
    """A journalled cell of model ``a`` at batch ``bN`` (read from the id), two rounds of ``median`` s."""
    batch = int(cell_id.split("-")[2][1:])
    rounds = [median, median * 1.1]
    latency = Latency.of(rounds)
    measurement = Measurement(Cell("a", "base", batch, (3, 8, 8)), "cpu", latency=latency)
    return JournalEntry(f"{cell_id}|key", measurement, rounds, 1, "")


def same(a: JournalEntry, b: JournalEntry) -> bool:
    """Equal as the journal keeps them: the record's saved keys, the rounds, the key."""
    return (a.key, a.measurement.to_extra_info(), a.latencies_s, a.iterations) == (
        b.key, b.measurement.to_extra_info(), b.latencies_s, b.iterations)


def test_append_then_read_round_trips(tmp_path):
    journal = Journal(tmp_path / "deep" / "j.jsonl")
    journal.append(entry("a-base-b1-8x8"))
    journal.append(entry("a-base-b2-8x8", 0.02))
    read = journal.read()
    assert list(read) == ["a-base-b1-8x8|key", "a-base-b2-8x8|key"]
    assert same(read["a-base-b2-8x8|key"], entry("a-base-b2-8x8", 0.02))


def test_a_line_cut_off_by_a_kill_is_skipped_with_a_warning(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.append(entry("a-base-b1-8x8"))
    with open(journal.path, "ab") as handle:
        handle.write(entry("a-base-b2-8x8").to_json().encode()[:40])  # no newline, half a record
    with pytest.warns(JournalWarning, match=r"j.jsonl:2: unreadable journal line ignored"):
        read = journal.read()
    assert list(read) == ["a-base-b1-8x8|key"]


@pytest.mark.parametrize("line", [b"[]", b'{"format": "other/1"}', b'{"format": "edgeprof-journal/1", "key": 3}', b"\xff\xfe"])
def test_foreign_lines_are_skipped(tmp_path, line):
    path = tmp_path / "j.jsonl"
    path.write_bytes(line + b"\n")
    with pytest.warns(JournalWarning):
        assert Journal(path).read() == {}


def test_missing_journal_reads_empty(tmp_path):
    assert Journal(tmp_path / "none.jsonl").read() == {}


def test_journal_path_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(UsageError, match="is a folder"):
        parse_journal_path(str(tmp_path))


def test_each_line_is_on_disk_when_append_returns(tmp_path):
    """A child appends, then kills itself at once: the line is there."""
    path = tmp_path / "j.jsonl"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        Journal(path).append(entry("a-base-b1-8x8"))
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    assert json.loads(path.read_text())["key"] == "a-base-b1-8x8|key"

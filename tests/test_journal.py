import json
import os
import signal

import pytest

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.runs.journal import Journal, JournalEntry, JournalWarning, entry_key, parse_journal_path


def entry(cell_id: str, median: float = 0.01) -> JournalEntry:
    return JournalEntry(entry_key("cpu", None, cell_id), "passed", {"model": "m", "latency_ms_median": median * 1e3},
                        [median, median * 1.1], 1, "")


def test_append_then_read_round_trips(tmp_path):
    journal = Journal(tmp_path / "deep" / "j.jsonl")
    journal.append(entry("a-base-b1-8x8"))
    journal.append(entry("a-base-b2-8x8", 0.02))
    read = journal.read()
    assert list(read) == ["cpu|random|a-base-b1-8x8", "cpu|random|a-base-b2-8x8"]
    assert read["cpu|random|a-base-b2-8x8"] == entry("a-base-b2-8x8", 0.02)


def test_a_line_cut_off_by_a_kill_is_skipped_with_a_warning(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.append(entry("a-base-b1-8x8"))
    with open(journal.path, "ab") as handle:
        handle.write(entry("a-base-b2-8x8").to_json().encode()[:40])  # no newline, half a record
    with pytest.warns(JournalWarning, match=r"j.jsonl:2: unreadable journal line ignored"):
        read = journal.read()
    assert list(read) == ["cpu|random|a-base-b1-8x8"]


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
    assert json.loads(path.read_text())["key"] == "cpu|random|a-base-b1-8x8"

"""The per-cell journal: one JSON line per finished cell, on disk the moment the cell ends.

pytest-benchmark writes its JSON only when the session ends, so a process killed mid-sweep (a
Jetson's out-of-memory killer, a SIGKILL) would lose every cell measured so far. The journal is
appended, flushed and fsynced after each cell; ``--resume`` reads it back.

Why a file of lines and not a database: one append of one line per cell, fsynced, is all the
durability a sweep needs, and a person can read it. What a database would add is made explicit here:
every write is checked (a short write is finished or undone, an error is one ``JournalError`` line
naming the file), a line cut off by a kill is cut away before the next append so a new line is never
glued onto it, and one run at a time holds the journal (an advisory ``flock`` on ``<journal>.lock``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_edgeprof.errors import EdgeprofWarning, UsageError
from pytest_edgeprof.measurement import Measurement
from pytest_edgeprof.paths import output_file

FORMAT = "edgeprof-journal/1"


class JournalWarning(EdgeprofWarning):
    """A journal line could not be read (typically the last one, cut off by a kill)."""


class JournalError(UsageError):
    """The journal cannot be written or is held by another run: one line naming the file."""


@dataclass(frozen=True)
class JournalEntry:
    """One finished cell: its record and timed rounds, under the key of what it measured."""

    key: str  # the cell key's text (measurement.CellKey): a resumed run replays only under an equal key
    measurement: Measurement
    latencies_s: list[float]  # the timed rounds, per call, as pytest-benchmark recorded them
    iterations: int
    message: str = ""  # the failure lines the cell ended with, for a person reading the journal

    def to_json(self) -> str:
        record = {"format": FORMAT, "key": self.key, "outcome": self.measurement.outcome.value,
                  "extra_info": self.measurement.to_extra_info(), "latencies_s": self.latencies_s,
                  "iterations": self.iterations, "message": self.message}
        return json.dumps(record, separators=(",", ":"))


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: int | None = None  # the open lock file while this run holds the journal

    def hold(self) -> None:
        """Take the journal for this run: its lock file locked and holding this run's pid. A second run on
        the same journal, or a lock that cannot be written (a full disk), is a ``JournalError``; either way
        nothing stays held."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _lock_error(lock_path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JournalError(f"journal {self.path} is in use by another run (pid {holder}); "
                               "wait for it to end or give this run another --journal") from None
        try:
            os.ftruncate(fd, 0)
            pid = str(os.getpid()).encode()
            if os.write(fd, pid) != len(pid):  # a short write: the disk filled up under it
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            os.close(fd)  # never keep a lock this run could then not take again
            raise _lock_error(lock_path, exc) from None
        self._lock = fd

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing drops the flock
            self._lock = None

    def cut_torn_tail(self) -> int:
        """Cut a last line that a kill left without its end, so the next line starts on its own; the
        bytes cut (0 where the file ends with a whole line)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        os.truncate(self.path, keep)
        return len(data) - keep

    def append(self, entry: JournalEntry) -> None:
        """Write one line and make it durable before returning; a write that fails is undone and
        raised as a ``JournalError`` naming the file and the cell that is not in it."""
        data = (entry.to_json() + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._error(entry, exc) from None
        start = os.fstat(fd).st_size
        try:
            while data:  # os.write may write part of it (a nearly full disk): the rest, or its OSError
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, start)  # no half line stays behind
            raise self._error(entry, exc) from None
        finally:
            os.close(fd)

    def _error(self, entry: JournalEntry, exc: OSError) -> JournalError:
        cell = entry.key.split("|")[0]
        return JournalError(f"cannot write the journal {self.path}: {exc.strerror or exc}; {cell} is not in it")

    def read(self) -> dict[str, JournalEntry]:
        """The entries by key (a later line for the same key wins); unreadable lines are skipped with a warning."""
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise UsageError(f"cannot read journal {self.path}: {exc.strerror}") from None
        entries: dict[str, JournalEntry] = {}
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            entry = _parse_line(line)
            if entry is None:
                warnings.warn(JournalWarning(f"{self.path}:{number}: unreadable journal line ignored (cut off by a kill?)"), stacklevel=1)
                continue
            entries[entry.key] = entry
        return entries


def _lock_error(lock_path: Path, exc: OSError) -> JournalError:
    return JournalError(f"cannot write the journal's lock {lock_path}: {exc.strerror or exc}; "
                        "free space there or give this run another --journal")


def _parse_line(line: bytes) -> JournalEntry | None:
    try:
        record = json.loads(line)
        if record.pop("format") != FORMAT or not _well_formed(record):
            return None
        measurement = Measurement.from_extra_info(record["extra_info"])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):  # UsageError is a ValueError
        return None
    return JournalEntry(record["key"], measurement, record["latencies_s"], record["iterations"], record["message"])


def _well_formed(record: dict[str, Any]) -> bool:
    """Fields of the types a replay needs (a hand-edited or damaged line may parse as JSON and not be one)."""
    texts = all(isinstance(record.get(name), str) for name in ("key", "outcome", "message"))
    rounds = record.get("latencies_s")
    rounds_ok = isinstance(rounds, list) and all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s >= 0 for s in rounds
    )
    iterations = record.get("iterations")
    counts = isinstance(iterations, int) and not isinstance(iterations, bool) and iterations >= 1
    return texts and isinstance(record.get("extra_info"), dict) and rounds_ok and counts


_LINE_START = b'{"format":"edgeprof-journal/'  # how every line JournalEntry.to_json writes begins


def parse_journal_path(text: str, option: str = "--journal") -> Path:
    """A journal path: a file that is an edgeprof journal, or none yet (``option`` names it in errors)."""
    path = output_file(text, option, ".benchmarks/edgeprof-journal.jsonl")
    if path.exists() and not path.is_file():  # a named pipe or a device: reading it would block or never end
        raise UsageError(f"{option} {text}: not a regular file; give a file path such as .benchmarks/edgeprof-journal.jsonl")
    if path.is_file():  # a run moves an old journal aside and --resume appends to it: never another file
        try:
            with path.open("rb") as handle:
                start = handle.read(len(_LINE_START))
        except OSError as exc:
            raise UsageError(f"{option} {text}: cannot read it: {exc.strerror or exc}; "
                             "give a journal this user can read and write") from None
        if not _LINE_START.startswith(start):
            raise UsageError(f"{option} {text}: not an edgeprof journal (its first line is not one); "
                             "give a new path or an edgeprof journal file")
    return path

"""What a run has learnt so far: every cell's record, the journal, out-of-memory batches, broken budgets.

Every edgeprof run journals: each finished cell is appended to the journal at once (``runs/journal.py``),
fsynced, so a killed run loses nothing, and one run at a time holds it. Replaying the old journal's cells
(``--resume``) is a feature plugin's (``features/resume.py``); here only whether the old journal is kept
and appended to, or moved aside for a new one. Cells without timings (out of memory, failed, skipped for
capacity) are not among pytest-benchmark's saved benchmarks, so they go to the saved run's
``"edgeprof": {"untimed_cells": [...]}`` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_edgeprof.measurement import Cell, CellKey, Measurement
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.runs.journal import Journal, JournalEntry, JournalError
from pytest_edgeprof.runs.saved import SavedCell, SavedRun


@dataclass(frozen=True)
class CellResult:
    nodeid: str
    measurement: Measurement
    timed: bool  # pytest-benchmark holds its rounds


class RunLog:
    def __init__(self, journal_path: Path, keep_old: bool) -> None:
        self.journal_path = journal_path
        self.keep_old = keep_old  # --resume: the old journal is appended to, not moved aside
        self.results: list[CellResult] = []
        self.broken_budgets: list[tuple[str, list[str]]] = []  # (cell id, the verdicts' texts)
        self._journal: Journal | None = None
        self._out_of_memory: dict[tuple[str, str, tuple[int, int, int]], int] = {}

    @property
    def journal(self) -> Journal:
        """This run's journal, taken when the tests start (``open_journal``), else on first use. A kept one is
        read, and a line cut off by a kill cut away, by the resume plugin on its first replay, which the
        fixture asks before it records any cell."""
        self.open_journal()
        assert self._journal is not None
        return self._journal

    def open_journal(self) -> None:
        """Take the journal (one run at a time): held by this run, and unless ``keep_old`` the old one moved
        aside to ``<journal>.prev`` for a new one. Whatever fails is a ``JournalError`` naming the file, and
        nothing stays held."""
        if self._journal is not None:
            return
        journal = Journal(self.journal_path)
        journal.hold()
        if not self.keep_old and journal.path.exists():
            try:
                journal.path.replace(journal.path.with_name(journal.path.name + ".prev"))
            except OSError as exc:  # a .prev that is a folder
                journal.release()
                raise JournalError(f"cannot move the journal {journal.path} aside: {exc.strerror or exc}") from None
        self._journal = journal

    def close(self) -> None:
        if self._journal is not None:
            self._journal.release()

    def record(self, nodeid: str, key: CellKey, measurement: Measurement, rounds: list[float], iterations: int,
               broken: list[str], replayed: str = "") -> None:
        """A finished cell: journalled at once (a replayed one, whose journal line is ``replayed``, only
        where this run judged it otherwise), kept for the saved run and the summary."""
        entry = JournalEntry(key.text, measurement, rounds, iterations, "\n".join(broken))
        if not replayed or entry.to_json() != replayed:
            self.journal.append(entry)
        self.results.append(CellResult(nodeid, measurement, bool(rounds)))
        if measurement.outcome is Outcome.OUT_OF_MEMORY:
            self._remember_out_of_memory(nodeid.split("[")[0], measurement.cell)
        if broken:
            self.broken_budgets.append((measurement.cell.id, broken))

    def record_skipped(self, nodeid: str, measurement: Measurement) -> None:
        self.results.append(CellResult(nodeid, measurement, False))

    def capacity_skip_reason(self, test: str, cell: Cell) -> str | None:
        """Why a cell need not run: a smaller batch of the same test, configuration and shape ran out of
        memory. ``test``: the test function's node id without its parameters (two tests may share a cell id)."""
        failed = self._out_of_memory.get((test, cell.configuration, cell.input_shape))
        if failed is not None and cell.batch_size > failed:
            return f"exceeds capacity (b={failed} ran out of memory)"
        return None

    def untimed_cells(self) -> list[dict[str, Any]]:
        """The saved run's untimed cells: ``{"fullname": node id, "extra_info": {...}}`` each."""
        return [{"fullname": r.nodeid, "extra_info": r.measurement.to_extra_info()} for r in self.results if not r.timed]

    def as_saved_run(self) -> SavedRun:
        """This run's cells as ``edgeprof compare`` reads a saved run (for --edgeprof-compare-fail)."""
        return SavedRun.of(Path("this run"), [SavedCell(r.nodeid, r.measurement) for r in self.results])

    def _remember_out_of_memory(self, test: str, cell: Cell) -> None:
        key = (test, cell.configuration, cell.input_shape)
        self._out_of_memory[key] = min(cell.batch_size, self._out_of_memory.get(key, cell.batch_size))

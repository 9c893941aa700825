"""``--resume``: a cell the old journal holds as measured under this very key is replayed, not measured again.

Registered only when ``--resume`` (or ``edgeprof_resume``) is set. Journalling itself is the core's
(``runlog.py``: every run appends each cell, fsynced, and holds the journal's lock); with this plugin the
core keeps the old journal and appends to it instead of moving it aside. The old journal is read on the
first replay asked, inside the first edgeprof test (so a damaged line's warning is among that test's), and a
line cut off by a kill is cut away then, before this run appends anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.runs.journal import JournalError

if TYPE_CHECKING:
    from pytest_edgeprof.measurement import CellKey
    from pytest_edgeprof.plugin.session import EdgeprofSession
    from pytest_edgeprof.runs.journal import JournalEntry

# What a resumed run replays: cells that were measured. A failure or an out-of-memory result may have a
# cause that is gone (a fixed bug, a larger memory limit), so those cells are measured again.
MEASURED = (Outcome.PASSED, Outcome.OVER_BUDGET)


class ResumePlugin:
    def __init__(self, session: EdgeprofSession) -> None:
        self._session = session
        self.entries: dict[str, JournalEntry] | None = None  # the old journal's entries by key text, once read

    def replay(self, key: CellKey) -> JournalEntry | None:
        """The old journal's entry measured under this very key (passed or over budget); None otherwise: a
        failed or out-of-memory cell is measured again, its cause may be gone."""
        entry = self._old_entries().get(key.text)
        return entry if entry is not None and entry.measurement.outcome in MEASURED else None

    def _old_entries(self) -> dict[str, JournalEntry]:
        if self.entries is None:
            journal = self._session.log.journal  # taken when the tests started, else now
            self.entries = journal.read()
            try:
                journal.cut_torn_tail()
            except OSError as exc:
                raise JournalError(f"cannot write the journal {journal.path}: {exc.strerror or exc}") from None
        return self.entries

"""What the store gives back: a stored run (its index row and its SavedRun) and a point of a series.

Importing this module imports no SQLAlchemy, so the dashboard and the commands can name the types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pytest_edgeprof.runs.saved import SavedRun, parse_run

REF_PREFIX = "store:"  # edgeprof compare store:12


@dataclass(frozen=True)
class StoredRun:
    """One run of the store: its row (id, machine, commit, branch, time) and the run itself, parsed on first use."""

    run_id: int
    machine: str
    commit_id: str
    branch: str
    saved_at: str  # pytest-benchmark's datetime (ISO 8601, UTC)
    document: str = field(repr=False)  # the pytest-benchmark JSON as stored

    @property
    def ref(self) -> str:
        """``store:12``, as ``edgeprof compare`` takes it."""
        return f"{REF_PREFIX}{self.run_id}"

    @cached_property
    def run(self) -> SavedRun:
        return parse_run(Path(self.ref), json.loads(self.document))


@dataclass(frozen=True)
class Point:
    """One value of a series: a metric of a cell in one run of a machine."""

    run_id: int
    machine: str
    cell: str
    metric: str
    value: float
    saved_at: str
    commit_id: str
    branch: str

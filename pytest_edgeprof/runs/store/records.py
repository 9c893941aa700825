"""What the store gives back: a stored run (its index row and its SavedRun) and a point of a series.

Importing this module imports no SQLAlchemy, so the dashboard and the commands can name the types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

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


def default_machine(machine_info: Mapping[str, Any]) -> str:
    """The name a run is stored under where ``--edgeprof-machine`` is not given: the board's identity,
    else the GPU it ran on, else the host's CPU (pytest-benchmark's cpu brand), else its host name."""
    edgeprof = machine_info.get("edgeprof")
    edgeprof = edgeprof if isinstance(edgeprof, Mapping) else {}
    cpu = machine_info.get("cpu")
    cpu = cpu if isinstance(cpu, Mapping) else {}
    for candidate in (edgeprof.get("board"), edgeprof.get("jetson_model"), edgeprof.get("gpu_name"),
                      cpu.get("brand_raw"), edgeprof.get("device_description"), machine_info.get("node")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return "unknown"

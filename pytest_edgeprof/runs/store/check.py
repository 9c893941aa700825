"""The regression check: the latest run of each machine against that machine's previous runs.

Method: a lookback z-score, as Conbench flags a change. For each cell and metric of the latest run,
the baseline is the same cell's values over the machine's previous runs (the last ``LOOKBACK``, on the
``--baseline`` branch where given); the value regresses when it is worse than the baseline's mean by more
than ``Z_THRESHOLD`` of the baseline's standard deviations AND by more than ``MIN_EFFECT`` of the mean
(a steady series, whose deviation is tiny, is not flagged for a change nobody would act on). Fewer than
``MIN_HISTORY`` previous values: not judged, and said so. docs/store.md says why not asv's step detection.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_edgeprof.metrics import COMPARED, METRICS, Metric
from pytest_edgeprof.runs.store.records import REF_PREFIX, Point

if TYPE_CHECKING:
    from pytest_edgeprof.runs.store.store import Store

LOOKBACK = 20  # previous runs a value is judged against
Z_THRESHOLD = 5.0  # Conbench's default threshold
MIN_EFFECT = 0.02  # and at least 2 % worse than the baseline's mean (the gates' default minimum effect)
MIN_HISTORY = 3  # previous values a z-score needs to mean anything
JUDGED = tuple(m.name for m in COMPARED)


@dataclass(frozen=True)
class Judged:
    """One cell's metric in the latest run against its baseline."""

    cell: str
    metric: Metric
    value: float
    baseline: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.baseline)

    @property
    def spread(self) -> float:
        return statistics.stdev(self.baseline) if len(self.baseline) > 1 else 0.0

    @property
    def worse_by(self) -> float:
        """How much worse than the mean, in the metric's own direction (negative: better)."""
        return self.value - self.mean if self.metric.worse == "higher" else self.mean - self.value

    @property
    def change(self) -> float:
        """``worse_by`` as a fraction of the mean (inf where the mean is 0 and the value worse)."""
        return self.worse_by / abs(self.mean) if self.mean else (math.inf if self.worse_by > 0 else 0.0)

    @property
    def z(self) -> float:
        if self.spread > 0:
            return self.worse_by / self.spread
        return math.inf if self.worse_by > 0 else 0.0

    @property
    def regressed(self) -> bool:
        return len(self.baseline) >= MIN_HISTORY and self.z > Z_THRESHOLD and self.change > MIN_EFFECT

    def text(self) -> str:
        fmt = self.metric.format
        z = "inf" if math.isinf(self.z) else f"{self.z:.1f}"
        return (f"{self.metric.label} {fmt(self.value)} vs {fmt(self.mean)} ± {fmt(self.spread) if self.spread else '0'} "
                f"over {len(self.baseline)} runs ({self.change:+.1%}, z {z})")


@dataclass(frozen=True)
class MachineCheck:
    """The latest run of one machine, judged."""

    machine: str
    run_id: int
    commit_id: str
    branch: str
    previous_runs: int
    judged: list[Judged] = field(default_factory=list)

    def regressed_cells(self) -> dict[str, list[Judged]]:
        cells: dict[str, list[Judged]] = defaultdict(list)
        for judged in self.judged:
            if judged.regressed:
                cells[judged.cell].append(judged)
        return dict(cells)

    def header(self) -> str:
        where = f"commit {self.commit_id[:10] or '?'}" + (f" on {self.branch}" if self.branch else "")
        if self.previous_runs == 0:
            verdict = "no previous run to judge it against"
        else:
            regressed = len(self.regressed_cells())
            verdict = f"{regressed} regressed cell(s)" if regressed else "no regression"
        return f"{self.machine}: {REF_PREFIX}{self.run_id} ({where}) against {self.previous_runs} previous run(s): {verdict}"

    def lines(self) -> list[str]:
        """One line per regressed cell."""
        return [f"REGRESSION {self.machine}: {cell} ({REF_PREFIX}{self.run_id}): " + "; ".join(j.text() for j in found)
                for cell, found in self.regressed_cells().items()]


def check_store(store: Store, baseline_branch: str | None = None, metrics: Iterable[str] = JUDGED,
                lookback: int = LOOKBACK, machine: str | None = None) -> list[MachineCheck]:
    """The latest run of each machine (or of ``machine``) judged against its previous runs."""
    wanted = set(metrics)
    checks = []
    for name in [machine] if machine is not None else store.machines():
        ids = store.run_ids(name)
        if not ids:
            continue
        latest = ids[-1]
        pool = store.run_ids(name, baseline_branch) if baseline_branch is not None else ids
        previous = [run_id for run_id in pool if run_id != latest][-lookback:]
        points = [p for p in store.history(machine=name, run_ids=[latest, *previous]) if p.metric in wanted]
        head = next((p for p in points if p.run_id == latest), None)
        checks.append(MachineCheck(name, latest, head.commit_id if head else "", head.branch if head else "",
                                   len(previous), judge(points, latest)))
    return checks


def judge(points: Iterable[Point], latest: int) -> list[Judged]:
    """Each cell and metric of run ``latest`` against the other runs' values of the same cell and metric."""
    current: dict[tuple[str, str], float] = {}
    baseline: dict[tuple[str, str], list[float]] = defaultdict(list)
    for point in points:
        key = (point.cell, point.metric)
        if point.run_id == latest:
            current[key] = point.value
        else:
            baseline[key].append(point.value)
    return [Judged(cell, METRICS[metric], value, tuple(baseline.get((cell, metric), ())))
            for (cell, metric), value in current.items() if metric in METRICS]

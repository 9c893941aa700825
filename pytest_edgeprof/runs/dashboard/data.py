"""What the dashboard shows, assembled from saved runs: per machine its runs in time order, per cell and
metric the series over those runs (value, interval, budget, regression mark, prediction).

Pure data: no HTML here. The runs come as :class:`MachineRun` (a machine's name and a :class:`SavedRun`),
from run files (``edgeprof dashboard RUN...``) or from a results store; the regressions come as
:class:`RegressionMark` from whatever judged them (the store's check).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import LATENCY, METRICS, PREDICTED, Metric
from pytest_edgeprof.runs.saved import SavedCell, SavedRun

# The measured metrics the dashboard charts, in the registry's order; an emulated target's predicted
# figures are drawn on their measured twin's chart, never as a metric of their own.
CHARTED: tuple[Metric, ...] = tuple(m for m in METRICS.values() if not m.predicts)


@dataclass(frozen=True)
class MachineRun:
    """One saved run of one machine. ``run_id`` names the run in regression marks: the store's id, or
    for a run file its path (the default)."""

    machine: str
    run: SavedRun
    run_id: str = ""

    @property
    def id(self) -> str:
        return self.run_id or str(self.run.path)


@dataclass(frozen=True)
class RegressionMark:
    """A regression judged elsewhere: this machine's cell got worse in this metric at this run."""

    machine: str
    cell: str  # the cell id, as SavedRun.cells keys it
    metric: str  # a metric's short name (latency, memory, ...)
    run: str  # MachineRun.id of the run that regressed


@dataclass(frozen=True)
class Point:
    """One run's figure of one cell and metric."""

    label: str  # the run as a tooltip names it: its commit (short) or its file, and when
    tick: str  # the run as the x axis names it: its commit, else its file name (shortened)
    value: float | None
    low: float | None = None  # the interval around ``value`` (latency: where another run's median is expected)
    high: float | None = None
    budget: float | None = None  # the budget's limit in the metric's base unit, where the cell ran under one
    budget_text: str = ""
    predicted: float | None = None  # an emulated target's predicted figure of this metric
    regressed: bool = False


@dataclass(frozen=True)
class Series:
    metric: Metric
    points: tuple[Point, ...]


@dataclass(frozen=True)
class MachineHistory:
    machine: str
    runs: tuple[MachineRun, ...]  # oldest first

    @property
    def latest(self) -> MachineRun:
        return self.runs[-1]

    def cell_ids(self) -> list[str]:
        """Every cell any of its runs has, the latest run's first (in its order)."""
        ids: dict[str, None] = {}
        for machine_run in reversed(self.runs):
            ids.update(dict.fromkeys(machine_run.run.cells))
        return list(ids)


def histories(runs: Iterable[MachineRun]) -> list[MachineHistory]:
    """The runs grouped by machine (sorted by name), each machine's runs oldest first."""
    machines: dict[str, list[MachineRun]] = {}
    for machine_run in runs:
        machines.setdefault(machine_run.machine, []).append(machine_run)
    if not machines:
        raise UsageError("no runs to show: give saved runs (edgeprof dashboard RUN... --out DIR) or a store with runs")
    return [MachineHistory(name, tuple(sorted(mine, key=_when))) for name, mine in sorted(machines.items())]


def _when(machine_run: MachineRun) -> tuple[str, str]:
    commit_time = machine_run.run.commit_info.get("time")
    return (machine_run.run.datetime or str(commit_time or ""), machine_run.id)


def commit_text(run: SavedRun) -> str:
    """The commit a run measured, short: ``3f2a9c1`` (``+`` when the tree was dirty); "" when unknown."""
    info: Mapping[str, Any] = run.commit_info
    commit = str(info.get("id") or "")
    if not commit or commit == "unversioned":
        return ""
    return commit[:7] + ("+" if info.get("dirty") else "")


def run_label(machine_run: MachineRun) -> str:
    run = machine_run.run
    return " ".join(part for part in (commit_text(run) or run.name, run.when) if part)


def run_tick(machine_run: MachineRun) -> str:
    name = machine_run.run.path.stem
    return commit_text(machine_run.run) or (name if len(name) <= 16 else name[:15] + "…")


def cell_series(history: MachineHistory, cell_id: str, regressions: Collection[RegressionMark] = ()) -> list[Series]:
    """Per charted metric that any run of this cell has, its points over the machine's runs."""
    marked = {(r.cell, r.metric, r.run) for r in regressions if r.machine == history.machine}
    found = []
    for metric in CHARTED:
        points = tuple(_point(m, m.run.cells.get(cell_id), metric, (cell_id, metric.name, m.id) in marked)
                       for m in history.runs)
        if any(p.value is not None for p in points):
            found.append(Series(metric, points))
    return found


def _point(machine_run: MachineRun, saved: SavedCell | None, metric: Metric, regressed: bool) -> Point:
    label, tick = run_label(machine_run), run_tick(machine_run)
    if saved is None:
        return Point(label, tick, None)
    low, high = _interval(saved, metric)
    budget, budget_text = _budget(saved, metric)
    twin = PREDICTED.get(metric.name)
    return Point(label, tick, saved.value(metric), low, high, budget, budget_text,
                 saved.value(twin) if twin is not None else None, regressed)


def _interval(saved: SavedCell, metric: Metric) -> tuple[float | None, float | None]:
    """Latency's repeat interval (where another run's median is expected), else the median's own 95 % interval."""
    latency = saved.measurement.latency
    if metric is not LATENCY or latency is None:
        return None, None
    interval = latency.repeat95_ms or latency.ci95_ms
    return interval if interval is not None else (None, None)


def _budget(saved: SavedCell, metric: Metric) -> tuple[float | None, str]:
    """The budget this cell ran under for ``metric`` (the checked limit where a verdict has it), as saved."""
    for verdict in saved.measurement.verdicts:
        if verdict.budget.metric in (metric.name, PREDICTED.get(metric.name, metric).name):
            return float(verdict.budget.limit), verdict.budget.text
    text = saved.measurement.budgets.get(metric.name)
    if text is None or metric.parse is None:
        return None, ""
    try:
        return metric.parse(text), text
    except UsageError:  # a budget text edited by hand: shown without its line
        return None, text


def emulated_targets(runs: Sequence[MachineRun], cell_id: str) -> list[str]:
    """The targets this cell's runs predicted figures for."""
    found = {p.target for m in runs if (c := m.run.cells.get(cell_id)) and (p := c.measurement.prediction)}
    return sorted(found)

"""The device's limits as a saved run shows them, and the cell to pick.

For each model, variant and input shape of a run: the largest batch size whose cell stayed within
every budget, the first larger one that did not and why (out of memory, over the memory budget, over
latency, ...). Then the recommendation: among all cells within every budget, the one with the best
objective (throughput by default; energy, latency or accuracy). A run made with ``--emulate`` answers
for the target: its verdicts judged the predicted figures, and the objective is the predicted one
(accuracy, the same on any device, stays measured); the host's measured figures are shown beside.

What this reads of each cell's Measurement: its outcome and error, and the verdicts of the budgets
it ran under. Cells without timings (out of memory, skipped) are read from the run's untimed cells
(see runs/saved.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.metrics import COMPARED, OBJECTIVES, PREDICTED, Metric, objective_metric
from pytest_edgeprof.outcome import Outcome, allocation_text
from pytest_edgeprof.runs.saved import SavedCell, SavedRun
from pytest_edgeprof.shared_options import size_text


def reasons(cell: SavedCell) -> list[str]:
    """Why a cell is not within its budgets, one short phrase each; [] when it is."""
    measurement = cell.measurement
    if measurement.outcome is Outcome.OUT_OF_MEMORY:
        tried = allocation_text(measurement.error)
        return ["out of memory" + (f" (tried to allocate {tried})" if tried else "")]
    if measurement.outcome is Outcome.SKIPPED:
        return ["skipped" + (f": {measurement.error}" if measurement.error else "")]
    found = [verdict.text() for verdict in measurement.verdicts if not verdict.passed]
    if not found and measurement.outcome is not Outcome.PASSED:
        found.append(measurement.outcome.words)
    return found


def within_budgets(cell: SavedCell) -> bool:
    return not reasons(cell)


@dataclass(frozen=True)
class Limit:
    """One model, variant (with its precision and runtime) and input shape: how far its batch size went
    within every budget."""

    model: str
    variant: str  # Cell.deployed_variant: "base", "p50", "base-int8-onnxruntime"
    input_shape: tuple[int, int, int]
    largest_within: SavedCell | None  # None: not even the smallest batch stayed within
    first_beyond: SavedCell | None  # the smallest larger batch that did not; None: none did
    why: tuple[str, ...]  # first_beyond's reasons
    also_beyond: tuple[SavedCell, ...]  # smaller batches that did not stay within (noise near a limit)
    batches: tuple[int, ...]  # every batch size the run has for this configuration and shape

    @property
    def first_cell(self) -> Cell:
        return (self.largest_within or self.first_beyond or self.also_beyond[0]).cell

    @property
    def shape_text(self) -> str:
        return size_text(self.input_shape)


def find_limits(run: SavedRun) -> list[Limit]:
    groups: dict[tuple[str, str, tuple[int, int, int]], list[SavedCell]] = {}
    for saved in run.cells.values():
        c = saved.cell
        groups.setdefault((c.model, c.deployed_variant, c.input_shape), []).append(saved)
    limits = []
    for (model, variant, shape), cells in sorted(groups.items()):
        cells.sort(key=lambda s: s.cell.batch_size)
        within = [s for s in cells if within_budgets(s)]
        largest = within[-1] if within else None
        top = largest.cell.batch_size if largest else 0
        beyond = [s for s in cells if not within_budgets(s)]
        first = next((s for s in beyond if s.cell.batch_size > top), None)
        limits.append(
            Limit(
                model, variant, shape, largest, first,
                tuple(reasons(first)) if first else (),
                tuple(s for s in beyond if s.cell.batch_size < top),
                tuple(s.cell.batch_size for s in cells),
            )
        )
    return limits


def emulated_target(run: SavedRun) -> str | None:
    """The target a run made with ``--emulate`` predicted figures for; None for a run without."""
    return next((s.measurement.prediction.target for s in run.cells.values() if s.measurement.prediction), None)


def objective_of(run: SavedRun, objective: str) -> Metric:
    """What "best" reads: the objective's metric, or on an emulated run its predicted twin where there is one."""
    m = objective_metric(objective)
    return PREDICTED.get(m.name, m) if emulated_target(run) else m


def recommend(run: SavedRun, objective: str = "throughput") -> SavedCell | None:
    """The cell within every budget with the best objective; None when no cell is within.

    Ties go to the smaller batch (less memory and latency for the same objective).
    """
    m = objective_of(run, objective)
    candidates = [(value, s) for s in run.cells.values() if within_budgets(s) and (value := s.value(m)) is not None]
    if not candidates:
        if any(within_budgets(s) for s in run.cells.values()):
            raise UsageError(f"objective {objective!r}: no cell of {run.path} has {m.key}; "
                             f"choose another objective ({', '.join(OBJECTIVES)})")
        return None
    sign = 1 if m.worse == "higher" else -1
    _, best = min(candidates, key=lambda pair: (sign * pair[0], pair[1].cell.batch_size, pair[1].id))
    return best


def across_deployments(run: SavedRun, best: SavedCell) -> str | None:
    """How the recommended cell's model, variant and shape fare in each precision and runtime the run has:
    ``resnet50 base 224x224: int8 onnxruntime fits up to b8; fp32 eager fits none (out of memory)``.
    None where the run has one deployment."""
    cell = best.cell
    mine = [limit for limit in find_limits(run) if limit.model == cell.model and limit.input_shape == cell.input_shape
            and limit.first_cell.variant == cell.variant and not _all_skipped(limit)]
    if len(mine) < 2:
        return None
    parts = []
    for limit in sorted(mine, key=lambda limit: limit.first_cell.deployed_variant != cell.deployed_variant):
        name = f"{limit.first_cell.precision} {limit.first_cell.runtime}"
        within = limit.largest_within
        parts.append(f"{name} fits up to b{within.cell.batch_size}" if within else f"{name} fits none ({'; '.join(limit.why)})")
    return f"{cell.model} {cell.variant} {size_text(cell.input_shape)}: " + "; ".join(parts)


def _all_skipped(limit: Limit) -> bool:
    """A deployment the device cannot run: said once before the run, not again in every answer."""
    cells = [limit.largest_within, limit.first_beyond, *limit.also_beyond]
    return all(c is None or c.outcome is Outcome.SKIPPED for c in cells)


def run_budgets(run: SavedRun) -> dict[str, str]:
    """The budgets the run's cells ran under (the first cell's text where cells differ)."""
    merged: dict[str, str] = {}
    for saved in run.cells.values():
        for name, text in saved.measurement.budgets.items():
            merged.setdefault(name, text)
    return merged


# --- output ----------------------------------------------------------------------------------------


def render(run: SavedRun, objective: str = "throughput") -> str:
    limits = find_limits(run)
    best = recommend(run, objective)
    budgets = run_budgets(run)
    lines = [f"run: {run.describe()}"]
    target = emulated_target(run)
    if target:
        lines.append(f"emulated: {target}; budgets judged its predicted figures, the host's measured ones beside them")
    if budgets:
        lines.append("budgets: " + ", ".join(f"{name} {text}" for name, text in budgets.items()))
    else:
        lines.append("budgets: none recorded in this run; only out-of-memory and failed cells count as beyond")
    rows = [("model", "variant", "input", "largest within", "first beyond", "why")]
    for limit in limits:
        largest = f"b{limit.largest_within.cell.batch_size}" if limit.largest_within else "none"
        if limit.largest_within and limit.first_beyond is None:
            largest += " (largest run)"
        first = f"b{limit.first_beyond.cell.batch_size}" if limit.first_beyond else "-"
        why = "; ".join(limit.why)
        if limit.also_beyond:
            why += ("; " if why else "") + "also beyond: " + ", ".join(
                f"b{s.cell.batch_size} ({'; '.join(reasons(s))})" for s in limit.also_beyond
            )
        rows.append((limit.model, limit.variant, limit.shape_text, largest, first, why))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        lines.append("  ".join(f"{cell:<{w}}" for cell, w in zip(row[:5], widths)) + "  " + row[5])
    lines.append("")
    m = objective_of(run, objective)
    if best is None:
        lines.append("recommended: none: no cell stayed within every budget")
    else:
        lines.append(f"recommended{f' for {target}' if target else ''} (best {m.label} within every budget): {best.id}")
        lines.append("  " + ", ".join(numbers(best)))
        if deployments := across_deployments(run, best):
            lines.append("  " + deployments)
    return "\n".join(lines)


def numbers(cell: SavedCell) -> list[str]:
    """The cell's compared metrics, each as its label and formatted value."""
    return [f"{cell.label(m)} {m.format(v)}" for m in COMPARED if (v := cell.value(m)) is not None]


def to_json(run: SavedRun, objective: str = "throughput") -> str:
    def cell(saved: SavedCell | None) -> dict[str, Any] | None:
        if saved is None:
            return None
        values = {m.key: saved.value(m) for m in COMPARED if saved.value(m) is not None}
        return {"id": saved.id, "batch_size": saved.cell.batch_size, "outcome": saved.outcome.value, **values}

    best = recommend(run, objective)
    return json.dumps(
        {
            "run": str(run.path),
            "device": run.device,
            "emulated": emulated_target(run),
            "budgets": run_budgets(run),
            "limits": [
                {
                    "model": limit.model,
                    "variant": limit.variant,
                    "precision": limit.first_cell.precision,
                    "runtime": limit.first_cell.runtime,
                    "input_shape": list(limit.input_shape),
                    "largest_within": cell(limit.largest_within),
                    "first_beyond": cell(limit.first_beyond),
                    "why": list(limit.why),
                }
                for limit in find_limits(run)
            ],
            "objective": objective,
            "recommended": cell(best),
        },
        indent=2,
    )

"""Two saved runs side by side, cell by cell, and the regression gate over them.

``compare_runs(a, b)`` matches cells by id and, for each metric of the registry (``metrics.py``) either run has, gives the
value in A, in B and the change. ``parse_fail_spec("latency,memory:5%,top1:-0.5")`` reads the
gate; ``regressions(a, b, thresholds)`` lists every cell and metric that got worse past its
threshold: memory, energy, FLOPs and accuracy by the threshold alone, latency and throughput only where the
change is also significant (``significance.py``: B's median beyond the two runs' repeat intervals pooled). The ``edgeprof compare`` command and the ``--edgeprof-compare-fail`` pytest option both
call these.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pytest_edgeprof.axes import DEFAULT_PRECISION, DEFAULT_RUNTIME, PRECISIONS, RUNTIMES
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import COMPARED, Metric
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.runs.saved import SavedCell, SavedRun
from pytest_edgeprof.runs.significance import JUDGED, TEST_NAME, Intervals, intervals

# --- two deployments of one run ------------------------------------------------------------------------


def parse_configs(text: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """``--configs fp32-eager,int8-onnxruntime``: the precision and runtime taken from each run."""
    accepted = f"two PRECISION-RUNTIME, e.g. fp32-eager,int8-onnxruntime (precisions {', '.join(PRECISIONS)}; " \
               f"runtimes {', '.join(RUNTIMES)})"
    items = [item.strip().lower() for item in text.split(",")]
    pairs = [(precision, runtime) for precision, _, runtime in (item.partition("-") for item in items)]
    if len(pairs) != 2 or any(p[0] not in PRECISIONS or p[1] not in RUNTIMES for p in pairs):
        raise UsageError(f"--configs {text!r}: expected {accepted}")
    return pairs[0], pairs[1]


def one_deployment(run: SavedRun, precision: str, runtime: str) -> SavedRun:
    """The run's cells of one precision and runtime, each keyed by the id its fp32 eager twin has, so that
    two deployments (of one run, or of two) compare cell by cell."""
    chosen = {replace(s.cell, precision=DEFAULT_PRECISION, runtime=DEFAULT_RUNTIME).id: s for s in run.cells.values()
              if (s.cell.precision, s.cell.runtime) == (precision, runtime)}
    if not chosen:
        present = sorted({f"{s.cell.precision}-{s.cell.runtime}" for s in run.cells.values()})
        raise UsageError(f"--configs: {run.path} has no {precision}-{runtime} cell; it has {', '.join(present) or 'none'}")
    return replace(run, path=Path(f"{run.path} [{precision} {runtime}]"), cells=chosen)


# --- the comparison --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One metric of one cell, A -> B."""

    metric: Metric
    a: float | None
    b: float | None

    @property
    def percent(self) -> float | None:
        """(B - A) / A in percent; None where either is missing; +-inf where A is 0 and B is not."""
        if self.a is None or self.b is None:
            return None
        if self.a == 0:
            return 0.0 if self.b == 0 else math.copysign(math.inf, self.b)
        return (self.b - self.a) / abs(self.a) * 100

    @property
    def worsening(self) -> float | None:
        """How much worse B is, in percent: positive is worse whichever way the metric runs."""
        percent = self.percent
        if percent is None:
            return None
        return percent if self.metric.worse == "higher" else -percent


@dataclass(frozen=True)
class CellComparison:
    id: str
    a: SavedCell
    b: SavedCell
    changes: tuple[Change, ...]  # only metrics that at least one of the two runs has


@dataclass(frozen=True)
class Comparison:
    run_a: SavedRun
    run_b: SavedRun
    cells: tuple[CellComparison, ...]
    only_a: tuple[str, ...]  # ids of cells run A has and B has not
    only_b: tuple[str, ...]


def compare_runs(run_a: SavedRun, run_b: SavedRun) -> Comparison:
    common = [cell_id for cell_id in run_a.cells if cell_id in run_b.cells]
    cells = []
    for cell_id in sorted(common, key=lambda i: (run_a.cells[i].cell, i)):
        a, b = run_a.cells[cell_id], run_b.cells[cell_id]
        changes = tuple(
            Change(m, a.value(m), b.value(m))
            for m in COMPARED
            if a.value(m) is not None or b.value(m) is not None
        )
        cells.append(CellComparison(cell_id, a, b, changes))
    return Comparison(
        run_a,
        run_b,
        tuple(cells),
        tuple(sorted(set(run_a.cells) - set(run_b.cells))),
        tuple(sorted(set(run_b.cells) - set(run_a.cells))),
    )


def require_common_cells(run_a: SavedRun, run_b: SavedRun) -> None:
    """A comparison with no cell in common compares nothing, so a gate over it would pass unseen: one
    UsageError line naming both runs, the configurations each holds and ``--configs``."""
    if any(cell_id in run_b.cells for cell_id in run_a.cells):
        return
    held_a, held_b = _configurations(run_a), _configurations(run_b)
    if held_a and held_b and held_a != held_b:
        how = f"to compare {held_a[0]} with {held_b[0]}, run edgeprof compare A B --configs {held_a[0]},{held_b[0]}"
    else:
        how = "cells match by model, variant, batch, shape, precision and runtime (edgeprof compare's --configs A,B " \
              "matches one PRECISION-RUNTIME of A with another of B)"
    raise UsageError(f"{run_a.path} ({', '.join(held_a) or 'no cells'}) and {run_b.path} ({', '.join(held_b) or 'no cells'}) "
                     f"have no cell in common, so nothing is compared; {how}")


def _configurations(run: SavedRun) -> list[str]:
    return sorted({f"{s.cell.precision}-{s.cell.runtime}" for s in run.cells.values()})


# --- the gate --------------------------------------------------------------------------------------

_FAIL_FORM = "METRIC:LIMIT[,METRIC:LIMIT...], e.g. latency,memory:5%,energy:10%,top1:-0.5 (latency and throughput " \
             "alone: significant and at least 2 %)"
MIN_EFFECT_PERCENT = 2.0  # --fail latency (no limit): the least change that fails, when it is also significant
_GATED = {m.name: m for m in COMPARED}
_THRESHOLD = re.compile(r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<unit>%|pp|)")


@dataclass(frozen=True)
class Threshold:
    """Fail when ``metric`` gets worse by more than ``limit``: percent of A, or percentage points (top1).
    Latency and throughput fail only where the change is also significant (``statistical``)."""

    metric: Metric
    limit: float
    unit: Literal["%", "pp"]
    text: str  # as the user wrote it, e.g. "memory:5%"

    def excess(self, change: Change) -> float | None:
        """How far ``change`` went the wrong way in this threshold's unit, or None if it cannot tell."""
        if self.unit == "%":
            return change.worsening
        if change.a is None or change.b is None:
            return None
        points = change.b - change.a
        return points if self.metric.worse == "higher" else -points

    @property
    def statistical(self) -> bool:
        """Judged by the runs' intervals as well as the limit: a metric read from the latency's median."""
        return self.metric in JUDGED

    def broken_by(self, change: Change) -> bool:
        """The limit alone: worse by more than it (the intervals are ``regressions``' part)."""
        excess = self.excess(change)
        return excess is not None and excess > self.limit


def parse_fail_spec(text: str) -> list[Threshold]:
    """``"latency:10%,memory:5%,energy:10%,top1:-0.5"`` -> thresholds.

    Latency, memory, energy and FLOPs are worse when they grow, throughput and top-1 when they fall;
    the sign is optional and, when given, must point the way that is worse. Top-1 takes percentage
    points (``top1:-0.5`` or ``top1:0.5pp``), the others percent of A's value (``memory:5%``).
    Latency and throughput may stand alone (``latency``): a minimum effect of 2 %.
    """
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"bad --fail {text!r}: expected {_FAIL_FORM}")
    thresholds: dict[str, Threshold] = {}
    for item in (part.strip() for part in text.split(",")):
        threshold = _parse_threshold(item, text)
        if threshold.metric.name in thresholds:
            raise UsageError(f"bad --fail {text!r}: {threshold.metric.name} given twice")
        thresholds[threshold.metric.name] = threshold
    return list(thresholds.values())


def _parse_threshold(item: str, whole: str) -> Threshold:
    name, sep, limit = item.partition(":")
    metric = _GATED.get(name.strip())
    if not sep and metric in JUDGED:
        return Threshold(metric, MIN_EFFECT_PERCENT, "%", item)
    if not sep or metric is None:
        raise UsageError(f"bad --fail item {item!r} in {whole!r}: expected {_FAIL_FORM}; metrics: {', '.join(_GATED)}")
    match = _THRESHOLD.fullmatch(limit.strip())
    wanted = metric.change_unit  # accuracy in percentage points, the others in percent of A
    example = f"{metric.name}:{'-0.5' if wanted == 'pp' else '10%'}"
    if match is None or (match["unit"] or "pp") != wanted:
        what = "percentage points, a number like -0.5" if wanted == "pp" else "percent, like 10%"
        raise UsageError(f"bad --fail item {item!r}: {metric.name} takes {what} (e.g. {example})")
    worse_sign = "+" if metric.worse == "higher" else "-"
    if match["sign"] and match["sign"] != worse_sign:
        way = "grows" if metric.worse == "higher" else "falls"
        raise UsageError(f"bad --fail item {item!r}: {metric.name} gets worse when it {way}, so its limit is {worse_sign}N or N")
    return Threshold(metric, float(match["number"]), wanted, item)


@dataclass(frozen=True)
class Regression:
    """A cell whose metric got worse past a threshold, or that went out of memory in B."""

    cell_id: str
    metric: str  # the metric's short name, or "outcome"
    a: float | None
    b: float | None
    excess: float  # how much worse, in the threshold's unit (inf for an out-of-memory cell)
    threshold: Threshold | None
    message: str
    intervals: Intervals | None = None  # latency, throughput: the intervals that made it significant

    def line(self) -> str:
        return f"{self.cell_id}: {self.message}"


def regressions(run_a: SavedRun, run_b: SavedRun, thresholds: list[Threshold]) -> list[Regression]:
    """Every cell of both runs, every threshold: what got worse past its limit (A is the baseline).

    Latency and throughput regress only where the change is also significant: B's median lies on the worse side of
    A's by more than the two runs' 95 % repeat intervals pooled; a cell saved without any interval is judged by the
    limit alone.
    A cell that ran in A and went out of memory in B is a regression of its own (it has no numbers
    left to compare). Cells in only one run are not: the grid may have changed. But with thresholds and
    no cell in common, nothing would be gated: a UsageError (``require_common_cells``).
    """
    if thresholds:
        require_common_cells(run_a, run_b)
    found = []
    for cell in compare_runs(run_a, run_b).cells:
        if thresholds and cell.b.outcome is Outcome.OUT_OF_MEMORY and cell.a.outcome is not Outcome.OUT_OF_MEMORY:
            found.append(Regression(cell.id, "outcome", None, None, math.inf, None, f"out of memory in B ({run_b.name}), ran in A"))
            continue
        for change in cell.changes:
            for threshold in thresholds:
                if threshold.metric == change.metric and threshold.broken_by(change):
                    judged = intervals(change.metric, cell.a, cell.b) if threshold.statistical else None
                    if judged is None or judged.significant(change.metric.worse):
                        found.append(_regression(cell.id, change, threshold, judged))
    return found


def _regression(cell_id: str, change: Change, threshold: Threshold, judged: Intervals | None) -> Regression:
    m = change.metric
    excess = threshold.excess(change)
    assert change.a is not None and change.b is not None and excess is not None
    by = f"{change.b - change.a:+.2f} pp" if threshold.unit == "pp" else _percent_text(change.percent)
    message = f"{m.label} {m.format(change.a)} -> {m.format(change.b)} ({by}), past --fail {threshold.text}"
    if judged is not None:
        message += (f" and significant (by more than {m.format(judged.margin(m.worse))}, the 95 % repeat intervals "
                    f"{_interval_text(judged.a, m)} and {_interval_text(judged.b, m)} pooled)")
    elif threshold.statistical:
        message += " (no saved interval: judged by the limit alone)"
    return Regression(cell_id, m.name, change.a, change.b, excess, threshold, message, judged)


def _interval_text(interval: tuple[float, float], metric: Metric) -> str:
    return f"[{metric.format(interval[0])}, {metric.format(interval[1])}]"


# --- output ----------------------------------------------------------------------------------------

_RED, _GREEN, _BOLD, _RESET = "\033[31m", "\033[32m", "\033[1m", "\033[0m"
NOISE_PERCENT = 1.0  # changes smaller than this are not coloured: timings move that much between runs


def _percent_text(percent: float | None) -> str:
    if percent is None:
        return ""
    if math.isinf(percent):
        return "new" if percent > 0 else "-inf %"
    return f"{round(percent, 1) + 0.0:+.1f} %"  # + 0.0: no "-0.0 %" for a change that rounds to nothing


def render_table(comparison: Comparison, *, color: bool = False, failed: Sequence[Regression] = ()) -> str:
    """The comparison as text: a header naming both runs and devices, one line per cell and metric."""
    a, b = comparison.run_a, comparison.run_b
    lines = [f"A: {a.describe()}", f"B: {b.describe()}"]
    if a.device != b.device:
        lines.append(f"note: different devices ({a.device} vs {b.device}): changes include the device's difference")
    flagged = {(r.cell_id, r.metric) for r in failed}
    rows = [("cell", "metric", "A", "B", "change")]
    styles: list[str] = [""]
    for cell in comparison.cells:
        first = True
        for change in cell.changes:
            m = change.metric
            rows.append((
                cell.id if first else "",
                max(cell.a.label(m), cell.b.label(m), key=len),
                _value_text(change.a, m, cell.a),
                _value_text(change.b, m, cell.b),
                _percent_text(change.percent),
            ))
            styles.append(_style(change, (cell.id, m.name) in flagged))
            first = False
        if not cell.changes:
            rows.append((cell.id, "(no metrics)", cell.a.outcome.value, cell.b.outcome.value, ""))
            styles.append("")
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row, style in zip(rows, styles):
        text = f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:>{widths[3]}}  {row[4]:>{widths[4]}}"
        lines.append(f"{style}{text}{_RESET}" if color and style else text)
    if comparison.only_a:
        lines.append(f"only in A ({len(comparison.only_a)}): {', '.join(comparison.only_a)}")
    if comparison.only_b:
        lines.append(f"only in B ({len(comparison.only_b)}): {', '.join(comparison.only_b)}")
    return "\n".join(lines)


def _value_text(value: float | None, metric: Metric, cell: SavedCell) -> str:
    if value is not None:
        return metric.format(value)
    return "-" if cell.outcome is Outcome.PASSED else cell.outcome.value


def _style(change: Change, failed: bool) -> str:
    worsening = change.worsening
    if failed:
        return _BOLD + _RED
    if worsening is None or abs(worsening) < NOISE_PERCENT:
        return ""
    return _RED if worsening > 0 else _GREEN


def to_csv(comparison: Comparison) -> str:
    """One row per cell and metric (``key``: its saved key); cells of one run only, with empty values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cell", "metric", "a", "b", "change_percent", "in"])
    for cell in comparison.cells:
        for change in cell.changes:
            writer.writerow([cell.id, change.metric.key, _csv_number(change.a), _csv_number(change.b), _csv_number(change.percent), "both"])
    for which, ids in (("a", comparison.only_a), ("b", comparison.only_b)):
        for cell_id in ids:
            writer.writerow([cell_id, "", "", "", "", which])
    return out.getvalue()


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(value)


def to_json(comparison: Comparison, failed: Sequence[Regression] = ()) -> str:
    """The comparison as JSON: per cell and metric A, B, the change, ``regressed`` and, for latency and
    throughput, the two intervals and whether they show a significant change (``significance``)."""
    flagged = {(r.cell_id, r.metric) for r in failed}
    def run(r: SavedRun) -> dict[str, Any]:
        return {"path": str(r.path), "device": r.device, "datetime": r.datetime}

    def finite(value: float | None) -> float | str | None:
        return value if value is None or math.isfinite(value) else str(value)

    return json.dumps(
        {
            "a": run(comparison.run_a),
            "b": run(comparison.run_b),
            "cells": [
                {
                    "id": cell.id,
                    "outcome": {"a": cell.a.outcome.value, "b": cell.b.outcome.value},
                    "metrics": {c.metric.key: _json_metric(cell, c, flagged, finite) for c in cell.changes},
                }
                for cell in comparison.cells
            ],
            "only_in_a": list(comparison.only_a),
            "only_in_b": list(comparison.only_b),
            "regressions": [
                {"cell": r.cell_id, "metric": r.metric, "a": r.a, "b": r.b, "message": r.message} for r in failed
            ],
        },
        indent=2,
    )


def _json_metric(cell: CellComparison, change: Change, flagged: set[tuple[str, str]],
                 finite: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"a": change.a, "b": change.b, "change_percent": finite(change.percent),
                             "regressed": (cell.id, change.metric.name) in flagged}
    if change.metric in JUDGED:
        judged = intervals(change.metric, cell.a, cell.b)
        entry["significance"] = None if judged is None else {
            "test": TEST_NAME, "interval_a": list(judged.a), "interval_b": list(judged.b),
            "keys": [judged.key_a, judged.key_b], "margin": judged.margin(change.metric.worse),
            "significant": judged.significant(change.metric.worse)}
    return entry

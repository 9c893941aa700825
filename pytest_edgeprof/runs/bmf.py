"""A saved run in Bencher Metric Format (BMF), for teams that track benchmarks on Bencher.

BMF is one JSON object: per benchmark name, per measure slug, ``{"value": x}`` with optional
``"lower_value"`` and ``"upper_value"`` (https://bencher.dev/docs/reference/bencher-metric-format).
Here a benchmark is a cell (its id), and a measure is one of the registry's measured metrics the cell
has. Latency goes to Bencher's built-in ``latency`` measure, which is in nanoseconds, with the repeat
interval (where another run's median is expected; else the median's 95 % interval) as its bounds;
throughput to its built-in ``throughput`` (operations a second: here images a second). The other
measures name their unit in their slug (``peak-memory-bytes``). Only measured figures go under these
slugs; an emulated target's predicted figures, when asked for, go under ``predicted-...`` slugs.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_edgeprof.metrics import (
    EFFICIENCY,
    ENERGY,
    FLOPS,
    FLOPS_PER_S,
    LATENCY,
    MAP,
    MEMORY,
    METRICS,
    MIOU,
    P99,
    PREDICTED,
    THROUGHPUT,
    TOP1,
    TOP5,
    Metric,
    number,
)
from pytest_edgeprof.runs.saved import SavedCell, SavedRun

# metric -> (measure slug, factor from the metric's base unit to the slug's unit)
MEASURES: dict[Metric, tuple[str, float]] = {
    LATENCY: ("latency", 1e6),  # Bencher's built-in measure, in nanoseconds
    P99: ("p99-latency", 1e6),  # nanoseconds, as latency
    THROUGHPUT: ("throughput", 1.0),  # Bencher's built-in measure: operations (images) a second
    MEMORY: ("peak-memory-bytes", 1.0),
    ENERGY: ("energy-joules-per-image", 1.0),
    FLOPS: ("flops-per-batch", 1.0),
    FLOPS_PER_S: ("achieved-flops-per-second", 1.0),
    EFFICIENCY: ("efficiency-fraction-of-peak", 1.0),
    TOP1: ("top1-accuracy-percent", 1.0),
    TOP5: ("top5-accuracy-percent", 1.0),
    MAP: ("map-score", 1.0),
    MIOU: ("miou-score", 1.0),
}
PREDICTED_PREFIX = "predicted-"
MEASURED: tuple[Metric, ...] = tuple(m for m in METRICS.values() if not m.predicts)


def measure_slug(metric: Metric) -> str:
    """The measure a metric goes under; a metric added to the registry without an entry keeps its own name."""
    return MEASURES.get(metric, (metric.name.replace("_", "-"), 1.0))[0]


def to_bmf(run: SavedRun, *, predicted: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """``{cell id: {measure slug: {"value": x, ...}}}`` for every cell with at least one figure."""
    benchmarks = {}
    for name, saved in run.cells.items():
        measures = _measured(saved)
        if predicted:
            measures.update(_predicted(saved))
        if measures:
            benchmarks[name] = measures
    return benchmarks


def render(run: SavedRun, *, predicted: bool = False) -> str:
    return json.dumps(to_bmf(run, predicted=predicted), indent=2) + "\n"


def _measured(saved: SavedCell) -> dict[str, dict[str, float]]:
    measures = {}
    for metric in MEASURED:
        value = number(saved.value(metric))
        if value is None:
            continue
        factor = MEASURES.get(metric, ("", 1.0))[1]
        entry = {"value": value * factor}
        if metric is LATENCY:
            entry.update(_bounds(saved, factor))
        measures[measure_slug(metric)] = entry
    return measures


def _bounds(saved: SavedCell, factor: float) -> dict[str, float]:
    latency = saved.measurement.latency
    interval = latency and (latency.repeat95_ms or latency.ci95_ms)
    if not interval:
        return {}
    low, high = (number(v) for v in interval)
    return {} if low is None or high is None else {"lower_value": low * factor, "upper_value": high * factor}


def _predicted(saved: SavedCell) -> dict[str, dict[str, float]]:
    """The target's predicted figures, each under ``predicted-`` and its measured twin's slug."""
    measures: dict[str, dict[str, Any]] = {}
    for measured_name, twin in PREDICTED.items():
        value = number(saved.value(twin))
        if value is not None:
            measured = METRICS[measured_name]
            slug, factor = measure_slug(measured), MEASURES.get(measured, ("", 1.0))[1]
            measures[PREDICTED_PREFIX + slug] = {"value": value * factor}
    return measures


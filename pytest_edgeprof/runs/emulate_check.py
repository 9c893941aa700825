"""``edgeprof emulate-check RUN``: an emulated run's predicted latencies held against its measured ones.

Meaningful where the target is the machine that measured (``--emulate host``, or a profile built
from the published figures of the GPU the run used): per cell the measured median, the predicted
latency and the error, then the share of cells within ±10 %, ±25 % and ±50 % and the worst cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import LATENCY, TARGET_LATENCY
from pytest_edgeprof.runs.saved import SavedRun

BANDS = (0.10, 0.25, 0.50)


@dataclass(frozen=True)
class Check:
    id: str
    measured_ms: float
    predicted_ms: float

    @property
    def error(self) -> float:
        """Predicted over measured, less one: +0.2 is 20 % too slow a prediction."""
        return self.predicted_ms / self.measured_ms - 1


@dataclass(frozen=True)
class CheckReport:
    run: str
    target: str
    device: str
    method: str
    checks: tuple[Check, ...]

    def share_within(self, band: float) -> float:
        return sum(abs(check.error) <= band for check in self.checks) / len(self.checks)

    @property
    def worst(self) -> Check:
        return max(self.checks, key=lambda check: abs(check.error))


def check_run(run: SavedRun) -> CheckReport:
    """The cells of ``run`` with both a measured and a predicted latency; UsageError where there are none."""
    checks, targets, methods = [], set(), set()
    for saved in run.cells.values():
        measured, predicted = saved.value(LATENCY), saved.value(TARGET_LATENCY)
        prediction = saved.measurement.prediction
        if measured is None or predicted is None or prediction is None:
            continue
        checks.append(Check(saved.id, measured, predicted))
        targets.add(prediction.target)
        methods.add(prediction.latency_method)
    if not checks:
        raise UsageError(f"{run.path}: no cell has both a measured and a predicted latency; "
                         "run the suite with --emulate PROFILE (host to check the model on this machine)")
    return CheckReport(str(run.path), ", ".join(sorted(targets)), run.device, "; ".join(sorted(methods)), tuple(checks))


def render(report: CheckReport) -> str:
    lines = [f"run: {report.run}", f"predicted for {report.target} ({report.method}) against measured on {report.device}"]
    if report.target != "host":
        lines.append(f"note: {report.target} is not the host; the errors say how far its figures are from this device's")
    width = max(len(check.id) for check in report.checks)
    lines.append(f"{'cell':<{width}}  {'measured':>10}  {'predicted':>10}  {'error':>7}")
    for check in report.checks:
        lines.append(f"{check.id:<{width}}  {LATENCY.format(check.measured_ms):>10}  "
                     f"{TARGET_LATENCY.format(check.predicted_ms):>10}  {check.error:>+7.1%}")
    shares = ", ".join(f"±{band:.0%}: {report.share_within(band):.0%}" for band in BANDS)
    worst = report.worst
    lines.append(f"within {shares} of {len(report.checks)} cells; worst {worst.id} {worst.error:+.1%}")
    return "\n".join(lines)


def to_json(report: CheckReport) -> str:
    return json.dumps({
        "run": report.run, "target": report.target, "device": report.device, "method": report.method,
        "cells": [{"id": c.id, "measured_ms": c.measured_ms, "predicted_ms": c.predicted_ms, "error": c.error}
                  for c in report.checks],
        "within": {f"{band:.2f}": report.share_within(band) for band in BANDS},
        "worst": {"id": report.worst.id, "error": report.worst.error},
    }, indent=2)

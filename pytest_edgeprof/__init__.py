"""pytest-edgeprof: does this CNN fit that edge device, and in which configuration?

The pytest plugin is ``pytest_edgeprof.plugin``; the ``edgeprof`` command is ``pytest_edgeprof.cli``.
What a notebook needs is here (docs/architecture.md shows where each lives)::

    from torchvision.models import resnet18
    from pytest_edgeprof import Cell, load_run, measure_model

    record = measure_model(resnet18(), Cell("resnet18", "base", 8, (3, 224, 224)), device="cpu", energy=False)
    print(record.value("latency"), record.value("memory"), record.outcome)
    run = load_run("latest")  # a saved run: every cell's Measurement beside pytest-benchmark's stats

Names that need torch (``measure_model``, ``measure_cell``) are imported on first use, so importing the
package (as pytest does for the plugin) stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from pytest_edgeprof.budgets import Budget, Verdict, parse_budget_spec
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Cell, CellKey, Measurement
from pytest_edgeprof.metrics import METRICS, Metric
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.runs.compare import compare_runs
from pytest_edgeprof.runs.saved import SavedCell, SavedRun, load_run

__version__ = "0.1.0"

__all__ = [
    "Budget", "Cell", "CellKey", "METRICS", "Measurement", "Metric", "Outcome", "SavedCell", "SavedRun",
    "UsageError", "Verdict", "compare_runs", "load_run", "measure_cell", "measure_model", "parse_budget_spec",
]

_NEEDS_TORCH = {"measure_model": "pytest_edgeprof.measure.cell", "measure_cell": "pytest_edgeprof.measure.cell"}


def __getattr__(name: str) -> Any:
    if name in _NEEDS_TORCH:
        return getattr(import_module(_NEEDS_TORCH[name]), name)
    raise AttributeError(f"module 'pytest_edgeprof' has no attribute {name!r}")

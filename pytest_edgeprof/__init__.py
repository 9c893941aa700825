"""pytest-edgeprof: does this CNN fit that edge device, and in which configuration?

The pytest plugin is ``pytest_edgeprof.plugin``; the ``edgeprof`` command is ``pytest_edgeprof.cli``.
What a notebook needs is here (docs/architecture.md shows where each lives)::

    from torchvision.models import resnet18
    from pytest_edgeprof import Cell, load_run, measure_model

    record = measure_model(resnet18(), Cell("resnet18", "base", 8, (3, 224, 224)), device="cpu", energy=False)
    print(record.value("latency"), record.value("memory"), record.outcome)
    run = load_run("latest")  # a saved run: every cell's Measurement beside pytest-benchmark's stats

Every name is imported on first use, so importing the package (as pytest does for the plugin, in every
run of the environment) costs next to nothing; ``measure_model`` and ``measure_cell`` import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Budget", "Cell", "CellKey", "METRICS", "Measurement", "Metric", "Outcome", "SavedCell", "SavedRun",
    "UsageError", "Verdict", "compare_runs", "load_run", "measure_cell", "measure_model", "parse_budget_spec",
]

_HOMES = {
    "Budget": "budgets", "Verdict": "budgets", "parse_budget_spec": "budgets", "UsageError": "errors",
    "Cell": "measurement", "CellKey": "measurement", "Measurement": "measurement", "METRICS": "metrics",
    "Metric": "metrics", "Outcome": "outcome", "compare_runs": "runs.compare", "SavedCell": "runs.saved",
    "SavedRun": "runs.saved", "load_run": "runs.saved", "measure_model": "measure.cell", "measure_cell": "measure.cell",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'pytest_edgeprof' has no attribute {name!r}")

"""The package's public names, as the README's notebook example uses them."""

from __future__ import annotations

import subprocess
import sys

from torch import nn

import pytest_edgeprof
from pytest_edgeprof import Cell, Outcome, measure_model
from pytest_edgeprof.measure.timing import StoppingRule


def test_every_public_name_resolves():
    for name in pytest_edgeprof.__all__:
        assert getattr(pytest_edgeprof, name) is not None, name


def test_importing_the_package_does_not_import_torch():
    code = "import sys, pytest_edgeprof; from pytest_edgeprof import Cell, Measurement, load_run; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_model_measured_from_a_notebook_is_a_full_record():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    rule = StoppingRule(precision=0.05, max_time_s=0.5)
    record = measure_model(model, Cell("tiny", "base", 4, (3, 32, 32)), energy=False, rule=rule)
    assert record.outcome is Outcome.PASSED
    assert record.latency is not None and record.latency.rounds >= 5 and record.value("latency") > 0
    assert record.latency.stable is not None and record.latency.ci95_ms is not None
    assert record.value("memory") >= record.cost.model_bytes + 4 * 3 * 32 * 32 * 4  # weights + input at least
    assert record.value("flops") == 2 * record.cost.macs and record.energy.source == "none"

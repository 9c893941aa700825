"""edgeprof export --format bmf: a real saved run as Bencher Metric Format, checked against its documented shape
(https://bencher.dev/docs/reference/bencher-metric-format: benchmark -> measure -> value, lower_value, upper_value)."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_edgeprof.cli import main
from pytest_edgeprof.metrics import LATENCY, MEMORY, METRICS, THROUGHPUT
from pytest_edgeprof.runs.bmf import MEASURES, PREDICTED_PREFIX
from pytest_edgeprof.runs.saved import load_run

EMULATED = Path(__file__).parent / "data" / "run_saved_by_main_c15c1ce_emulated.json"


def assert_bmf(data: object) -> None:
    """Bencher's JSON schema (bmf.json): an object of benchmarks, each an object of measures, each with a
    number "value" and optional number "lower_value"/"upper_value"; measure slugs at most 64 characters."""
    assert isinstance(data, dict) and data
    for benchmark, measures in data.items():
        assert isinstance(benchmark, str) and 0 < len(benchmark) <= 1024
        assert isinstance(measures, dict) and measures
        for slug, entry in measures.items():
            assert isinstance(slug, str) and 0 < len(slug) <= 64
            assert set(entry) <= {"value", "lower_value", "upper_value"} and "value" in entry
            assert all(isinstance(v, float | int) and not isinstance(v, bool) for v in entry.values())
            if "lower_value" in entry:
                assert entry["lower_value"] <= entry["value"] <= entry["upper_value"]


def test_a_real_run_exports_one_benchmark_per_cell_and_a_measure_per_metric(grid_run, capsys):
    assert main(["export", str(grid_run), "--format", "bmf"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert_bmf(data)
    run = load_run(grid_run)
    assert list(data) == list(run.cells)
    for cell_id, measures in data.items():
        cell = run.cells[cell_id]
        had = {MEASURES[m][0] for m in METRICS.values() if not m.predicts and cell.value(m) is not None}
        assert set(measures) == had  # every metric the cell has, nothing it lacks
        assert measures["latency"]["value"] == cell.value(LATENCY) * 1e6  # Bencher's latency is in nanoseconds
        assert measures["throughput"]["value"] == cell.value(THROUGHPUT)
        assert measures["peak-memory-bytes"]["value"] == cell.value(MEMORY)
        assert not any(slug.startswith(PREDICTED_PREFIX) for slug in measures)


def test_latency_bounds_are_the_repeat_interval_and_predictions_stay_apart(tmp_path, capsys):
    out = tmp_path / "bmf.json"
    assert main(["export", str(EMULATED), "--format", "bmf", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    measured = json.loads(out.read_text())
    assert_bmf(measured)
    run = load_run(EMULATED)
    bounded = [cell for cell in run.cells.values() if cell.measurement.latency.repeat95_ms]
    assert bounded
    for cell in bounded:
        low, high = cell.measurement.latency.repeat95_ms
        assert measured[cell.id]["latency"] == {"value": cell.value(LATENCY) * 1e6, "lower_value": low * 1e6,
                                                "upper_value": high * 1e6}
    assert not any(slug.startswith(PREDICTED_PREFIX) for m in measured.values() for slug in m)  # measured only

    assert main(["export", str(EMULATED), "--format", "bmf", "--predicted"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert_bmf(both)
    for cell_id, measures in both.items():
        cell = run.cells[cell_id]
        assert measures["predicted-latency"] == {"value": cell.value("target_latency") * 1e6}
        assert measures["latency"] == measured[cell_id]["latency"]  # a prediction never under a measured measure
        assert {slug for slug in measures if not slug.startswith(PREDICTED_PREFIX)} == set(measured[cell_id])


def test_every_measured_metric_has_a_measure_of_its_own():
    measured = [m for m in METRICS.values() if not m.predicts]
    assert set(MEASURES) == set(measured)
    slugs = [slug for slug, _ in MEASURES.values()]
    assert len(set(slugs)) == len(slugs)


def test_bad_input_is_one_line_and_exit_2(grid_run, tmp_path, capsys):
    assert main(["export", str(grid_run), "--format", "csv"]) == 2
    assert "argument --format: invalid choice: 'csv' (choose from 'bmf')" in capsys.readouterr().err
    assert main(["export", str(grid_run), "--format", "bmf", "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path}: is a folder; give a file path such as bmf.json" in capsys.readouterr().err

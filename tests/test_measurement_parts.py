"""The record's one serializer: every part writes and reads the keys its fields name, and a metric is
read from the part that saves it."""

from __future__ import annotations

from dataclasses import fields

import pytest

from pytest_edgeprof.budgets import Budget, Verdict
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import (
    Accuracy,
    Cell,
    Cost,
    Deployment,
    Efficiency,
    Energy,
    Latency,
    Measurement,
    Memory,
    Prediction,
    Pruning,
    WarmUp,
)
from pytest_edgeprof.metrics import METRICS, number
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.saved_keys import keys_of, read_part, saved_fields

PARTS = (Latency, WarmUp, Memory, Energy, Cost, Efficiency, Deployment, Pruning, Accuracy, Prediction)


def full_record() -> Measurement:
    """A record with every part, and every field that may be left out, set."""
    cell = Cell("net", "p50", 4, (3, 64, 48), "int8", "onnxruntime")
    return Measurement(
        cell, "cuda:0", Outcome.OVER_BUDGET, "",
        latency=Latency.of([0.010 + i * 1e-4 for i in range(30)], "cuda-events", stable=True),
        warmup=WarmUp(12, True),
        memory=Memory(5_000_000, 1_000_000, 200_000, "cuda allocator", peak_reserved_bytes=6_000_000),
        energy=Energy(0.25, 12.5, "nvml-counter", "module input", 3e-8),
        cost=Cost(10**9, 5 * 10**8, 10**6, 4 * 10**6, "", "detection", (3, 64, 64), "real-forward", "depends on boxes"),
        efficiency=Efficiency(1e11, 0.4),
        deployment=Deployment("onnxruntime 1.32.0", "CUDAExecutionProvider", {"threads": 2}, 1.5, "static, 8 images"),
        pruning=Pruning(0.5, 0.49, "magnitude", 2_000_000, 1_000_000, (3, 224, 224)),
        accuracy=Accuracy(70.1, 89.5, "val: 100 images", map=0.31, miou=0.52),
        prediction=Prediction("jetson-nano", "fp16", 7_000_000, 40.0, "roofline", 0.9, "from the power envelope"),
        budgets={"memory": "4MB"},
        verdicts=(Verdict(Budget("memory", 4e6, "4MB"), 5e6, False),),
        device_state={"before": {"load_average_1m": 0.5}},
        other={"user_key": [1, 2]},
    )


def test_a_full_record_reads_back_equal_and_writes_the_same_keys():
    record = full_record()
    info = record.to_extra_info()
    back = Measurement.from_extra_info(info)
    assert back.to_extra_info() == info
    assert {f.name: getattr(back, f.name) for f in fields(Measurement) if f.name != "latency"} == \
        {f.name: getattr(record, f.name) for f in fields(Measurement) if f.name != "latency"}
    assert back.latency.samples_s == () and back.latency.median_ms == record.latency.median_ms  # the rounds are not saved


def test_each_key_is_written_by_one_field_or_derived_value_only():
    keys = [key for part in PARTS for key in keys_of(part)]
    assert len(keys) == len(set(keys))
    assert {f.name for f in fields(Cell)}.isdisjoint(keys)


def test_every_metric_is_saved_by_a_part_and_read_from_it_as_it_is_saved():
    record = full_record()
    info = record.to_extra_info()
    saved = {key for part in PARTS for key in keys_of(part)}
    for metric in METRICS.values():
        assert metric.key in saved, metric.name
        assert record.value(metric) == number(info[metric.key]) is not None, metric.name
    assert record.value("target_throughput") == pytest.approx(4 / 0.040)


def test_a_part_not_measured_reads_as_none_and_its_metrics_as_none():
    record = Measurement(Cell("net", "base", 1, (3, 8, 8)), "cpu")
    assert all(record.value(metric) is None for metric in METRICS.values())
    assert record.to_extra_info() == {"model": "net", "variant": "base", "batch_size": 1, "input_shape": [3, 8, 8],
                                      "precision": "fp32", "runtime": "eager", "device": "cpu", "outcome": "passed"}


def test_fields_left_out_when_empty_stay_out_and_read_back_as_their_defaults():
    cost = Cost(100, 50, 10, 40)
    written = Measurement(Cell("net", "base", 1, (3, 8, 8)), "cpu", cost=cost).to_extra_info()
    assert [key for key in written if key in keys_of(Cost)] == ["flops", "macs", "params", "model_bytes"]
    assert read_part(Cost, written) == cost


def test_reading_is_lenient_with_runs_of_other_versions():
    info = {"latency_ms_median": 2.0, "latency_ms_ci95": [1.0, "x"], "latency_stable": "yes", "warmup_calls": 3}
    latency = read_part(Latency, info)
    assert (latency.p90_ms, latency.p99_ms, latency.iqr_ms, latency.rounds, latency.timer) == (2.0, 2.0, 0.0, 0, "")
    assert latency.ci95_ms is None and latency.stable is None
    assert read_part(WarmUp, info) == WarmUp(3, False)
    assert read_part(Accuracy, {"top1": 70.0, "eval_set": "val"}).top5 == 0.0  # saved before top-5 was
    assert read_part(Energy, {"energy_j_per_image": None}) == Energy(None, None, "")  # the key marks the part
    assert read_part(Prediction, {"target": ""}) is None and read_part(Pruning, {"prune_target": "half"}) is None


def test_a_metric_saved_as_anything_but_a_number_is_refused_in_one_line():
    info = {**full_record().to_extra_info(), "target_throughput_ips": "fast"}
    with pytest.raises(UsageError, match="^target_throughput_ips is 'fast', not a number$"):
        Measurement.from_extra_info(info)


@pytest.mark.parametrize("part", PARTS)
def test_every_field_of_a_part_is_saved_but_the_rounds_themselves(part):
    unsaved = {f.name for f in fields(part)} - {f.name for f in saved_fields(part)}
    assert unsaved == ({"samples_s"} if part is Latency else set())

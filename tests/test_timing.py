import statistics
import time

import numpy as np
import pytest
from hypothesis import given, strategies as st

from pytest_edgeprof.measurement import Cell, Latency, Measurement, median_interval
from pytest_edgeprof.measure.timing import CallRecorder, warm_up


@given(st.lists(st.floats(1e-6, 10.0), min_size=2, max_size=200))
def test_latency_percentiles_agree_with_numpy(samples):
    stats = Latency.of(samples)
    assert stats.median_ms == pytest.approx(np.median(samples) * 1e3)
    assert stats.p90_ms == pytest.approx(np.percentile(samples, 90) * 1e3)
    assert stats.p99_ms == pytest.approx(np.percentile(samples, 99) * 1e3)
    iqr = (np.percentile(samples, 75) - np.percentile(samples, 25)) * 1e3
    assert stats.iqr_ms == pytest.approx(iqr, abs=1e-9)


def test_throughput_is_batch_over_median():
    stats = Latency.of([0.010, 0.020, 0.030])
    assert stats.throughput_ips(8) == pytest.approx(8 / 0.020)


def test_warm_up_waits_until_timings_settle():
    """A call whose first invocations are slow, as with cold caches, is warmed past them."""
    first_calls = iter([0.05, 0.03])

    def cold_then_fast():
        time.sleep(next(first_calls, 0.002))

    report = warm_up(cold_then_fast, "cpu", window=3, tolerance=0.5)
    assert report.settled
    assert report.calls >= 7  # two slow calls must leave the earlier window before it matches the latest
    assert report.median_s < 0.01


def test_warm_up_stops_at_its_time_limit_and_says_so():
    durations = iter(range(1, 1000))

    report = warm_up(lambda: time.sleep(next(durations) * 0.002), "cpu", max_seconds=0.2)
    assert not report.settled and report.seconds >= 0.2


def test_call_recorder_times_each_call():
    recorder = CallRecorder(lambda: time.sleep(0.01), "cpu")
    for _ in range(3):
        recorder()
    latencies = recorder.latencies_s()
    assert len(latencies) == 3 and all(0.01 <= t < 0.1 for t in latencies)
    recorder.clear()
    assert recorder.latencies_s() == []


def test_measurement_extra_info_has_the_design_keys():
    cell = Cell("resnet50", "base", 8, (3, 224, 160))
    assert cell.id == "resnet50-base-b8-224x160"
    info = Measurement(cell, "cpu", latency=Latency.of([0.1, 0.2, 0.3], "perf_counter")).to_extra_info()
    for key in ("model", "variant", "batch_size", "input_shape", "device", "latency_ms_median", "latency_ms_p90",
                "latency_ms_p99", "latency_ms_iqr", "throughput_ips"):
        assert key in info
    assert info["input_shape"] == [3, 224, 160]
    assert info["throughput_ips"] == pytest.approx(8 / 0.2)
    assert Cell.from_extra_info(info) == cell


@given(st.lists(st.floats(min_value=1e-6, max_value=1.0, allow_nan=False), min_size=1, max_size=300))
def test_the_medians_interval_holds_the_median_between_two_of_the_samples(samples):
    interval = median_interval(samples)
    if len(samples) < 6:
        assert interval is None
        return
    low, high = interval
    assert low in samples and high in samples and low <= statistics.median(samples) <= high


def test_the_medians_interval_is_the_textbook_one_for_100_samples():
    """For n = 100 the 95 % interval of the median is the 40th to the 61st order statistic."""
    assert median_interval(range(1, 101)) == (40, 61)

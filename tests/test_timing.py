import math
import random
import statistics
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.timing import CallRecorder, StoppingRule, warm_up
from pytest_edgeprof.measurement import EXACT_RANKS_UP_TO, Cell, Latency, Measurement, median_interval, repeat_interval
from pytest_edgeprof.metrics import parse_latency_ci


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


@pytest.mark.serial  # a bound on time or rate: `make test` runs it alone
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


def _sleeper(spread_s: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    return lambda: time.sleep(0.002 + rng.uniform(0, spread_s))


@pytest.mark.serial  # a bound on time or rate: `make test` runs it alone
def test_rounds_stop_once_the_median_is_known_within_the_precision():
    recorder = CallRecorder(_sleeper(0.00002), "cpu")
    began = time.perf_counter()
    rounds = StoppingRule(precision=0.05, min_rounds=5, min_time_s=0.05, max_time_s=5.0).run(recorder)
    assert rounds.stable and len(rounds.latencies_s) >= 6
    assert time.perf_counter() - began < 2.0  # well before the ceiling
    low, high = median_interval(rounds.latencies_s)
    median = statistics.median(rounds.latencies_s)
    assert median - low <= 0.05 * median and high - median <= 0.05 * median


@pytest.mark.serial  # a bound on time or rate: `make test` runs it alone
def test_rounds_that_cannot_reach_the_precision_end_at_the_ceiling_marked_unstable():
    recorder = CallRecorder(_sleeper(0.004), "cpu")  # a spread of 2x the base time: ±0.1 % is out of reach
    began = time.perf_counter()
    rounds = StoppingRule(precision=0.001, min_rounds=5, min_time_s=0.05, max_time_s=0.3).run(recorder)
    assert not rounds.stable and 0.3 <= time.perf_counter() - began < 0.5


@given(st.text(max_size=12))
def test_latency_ci_takes_a_percentage_or_says_what_it_accepts(text):
    try:
        value = parse_latency_ci(text)
    except UsageError as exc:
        assert str(exc).startswith("bad --latency-ci") and "e.g. 1% or 0.5%" in str(exc)
    else:
        assert text.strip().endswith("%") and 0 < value <= 0.5


def test_latency_ci_by_example():
    assert parse_latency_ci("1%") == 0.01 and parse_latency_ci(" 0.5 %") == 0.005
    for bad in ("1", "0%", "-1%", "51%", "%", "1e1%", "one%"):
        with pytest.raises(UsageError):
            parse_latency_ci(bad)


@pytest.mark.parametrize("n", [1001, 1234, 1500])
def test_above_the_exact_sum_the_ranks_are_the_exact_ones(n):
    """Above EXACT_RANKS_UP_TO the ranks are found from the normal approximation and the binomial's
    terms in floats; they must be those of the exact integer sum (which costs seconds from a few
    thousand samples on)."""
    below, exact = 0.0, 0
    while exact < n // 2 and below + math.comb(n, exact) / 2**n <= 0.025:
        below += math.comb(n, exact) / 2**n
        exact += 1
    assert n > EXACT_RANKS_UP_TO and median_interval(range(1, n + 1)) == (exact, n + 1 - exact)


def _runs(walk: float, trials: int = 200, seed: int = 12):
    """Pairs (this run's rounds, the next run's median) of a model whose speed drifts as a random walk of
    ``walk`` per round, each round with its own noise: a seeded simulation of a machine like this VM."""
    rng = random.Random(seed)
    for _ in range(trials):
        speed, rounds = 1.0, []
        for _ in range(400):
            speed *= 1 + rng.gauss(0, walk)
            rounds.append(0.02 * speed * (1 + abs(rng.gauss(0, 0.03))))
        yield rounds[:200], statistics.median(rounds[200:])


def _coverage(rule, walk: float) -> float:
    hits = total = 0
    for rounds, following in _runs(walk):
        low, high = rule(rounds)
        hits, total = hits + (low <= following <= high), total + 1
    return hits / total


def test_the_repeat_interval_holds_the_next_runs_median_where_the_within_run_one_cannot():
    assert _coverage(median_interval, 0.0) >= 0.75 and _coverage(repeat_interval, 0.0) >= 0.95  # no drift
    assert _coverage(median_interval, 0.001) <= 0.3 and _coverage(repeat_interval, 0.001) >= 0.75  # drift


def test_the_repeat_interval_needs_three_blocks_and_is_never_narrower_than_the_run_own():
    assert repeat_interval([0.01] * 8) is None and repeat_interval([0.01] * 9) == (0.01, 0.01)
    rounds = [0.02 * (1 + 0.0002 * i) + 0.0001 * (i % 7) for i in range(300)]  # a slow rise, some noise
    shuffled = random.Random(3).sample(rounds, len(rounds))
    (low, high), (within_low, within_high) = repeat_interval(rounds), median_interval(rounds)
    assert low <= within_low and high >= within_high
    shuffled_low, shuffled_high = repeat_interval(shuffled)
    assert high - low > 2 * (shuffled_high - shuffled_low)  # the same rounds, their drift seen only in time order


def test_both_intervals_are_saved_and_read_back():
    measurement = Measurement(Cell("net", "base", 1, (3, 8, 8)), "cpu")
    measurement.latency = Latency.of([0.01 + 0.0001 * (i % 5) + 0.00001 * i for i in range(40)])
    info = measurement.to_extra_info()
    assert info["latency_ms_repeat95"] == list(measurement.latency.repeat95_ms)
    assert info["latency_ms_repeat95"][0] <= info["latency_ms_ci95"][0] <= info["latency_ms_ci95"][1] <= info["latency_ms_repeat95"][1]
    read = Measurement.from_extra_info(info).latency
    assert (read.ci95_ms, read.repeat95_ms) == (measurement.latency.ci95_ms, measurement.latency.repeat95_ms)


def test_one_slow_block_leaves_the_repeat_interval_as_it_was_and_a_split_run_widens_it_never_below_zero():
    rounds = [0.02 * (1 + 0.001 * (i % 5)) for i in range(27)] + [2.0, 2.0, 2.0]  # the last block ran while something
    assert repeat_interval(rounds) == pytest.approx(repeat_interval(rounds[:27] + [0.0202] * 3), rel=0.01)  # held the cores
    low, high = repeat_interval([0.02] * 15 + [2.0] * 15)  # half the run slow: the median itself is in doubt
    assert low == 0.0 and high > 2.0


# A forward whose times never settle (0.2 s and 0.6 s in turn): warm-up alone would run to its 10 s bound.
UNSETTLED_FORWARD = """
import time
from torch import nn

class Uneven(nn.Module):
    calls = 0

    def forward(self, x):
        Uneven.calls += 1
        time.sleep(0.2 if Uneven.calls % 2 else 0.6)
        return x.mean()

def test_uneven(edgeprof):
    edgeprof(Uneven(), batch_size=1, input_shape=(3, 4, 4), name="uneven")
"""


@pytest.mark.serial  # a bound on time or rate: `make test` runs it alone
def test_warm_up_is_bounded_by_the_benchmark_max_time_and_says_so(pytester, tmp_path):
    pytester.makepyfile(UNSETTLED_FORWARD)
    out = tmp_path / "run.json"
    began = time.perf_counter()
    result = pytester.runpytest("--device", "cpu", "--no-energy", "--benchmark-max-time", "0.3",
                                "--benchmark-min-rounds", "1", "-p", "no:cacheprovider", f"--benchmark-json={out}")
    took = time.perf_counter() - began
    result.assert_outcomes(passed=1)
    import json

    info = json.loads(out.read_text())["benchmarks"][0]["extra_info"]
    assert info["warmup_settled"] is False and 1 <= info["warmup_calls"] <= 3  # 1 s at least: a few calls, not 10 s
    result.stdout.fnmatch_lines(["*uneven-base-b1-4x4: warm-up stopped at its 1 s bound (--benchmark-max-time, from 1 to 10 s) after "
                                 "* call(s), before its timings settled*"])
    assert took < 9, took

"""The statistics of a cell's timed rounds: median, percentiles (the interquartile range's among them),
coefficient of variation, the median's distribution-free confidence interval and the interval another run's median is
expected in. Seconds in, seconds out; the record (``measurement_parts.Latency``) keeps them in milliseconds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import NamedTuple


class Summary(NamedTuple):
    """The rounds summarised, in seconds; an interval or the coefficient of variation is None where there
    are too few rounds for it."""

    median: float
    p25: float
    p75: float
    p90: float
    p99: float
    ci95: tuple[float, float] | None
    cov: float | None
    repeat95: tuple[float, float] | None


def summarize(samples: Iterable[float]) -> Summary:
    """``samples``, in the order they were taken (the repeat interval's blocks follow time), summarised."""
    ordered_in_time = tuple(float(s) for s in samples)
    if not ordered_in_time:
        raise ValueError("Latency needs at least one sample")
    cuts = statistics.quantiles(ordered_in_time, n=100, method="inclusive") if len(ordered_in_time) > 1 else None

    def percentile(percent: int) -> float:
        return cuts[percent - 1] if cuts else ordered_in_time[0]

    cov = (statistics.stdev(ordered_in_time) / statistics.fmean(ordered_in_time)
           if len(ordered_in_time) > 1 else None)
    return Summary(statistics.median(ordered_in_time), percentile(25), percentile(75), percentile(90), percentile(99),
                   median_interval(ordered_in_time), cov, repeat_interval(ordered_in_time))


EXACT_RANKS_UP_TO = 1000  # beyond, summing the binomial in integers from 0 costs seconds


def median_interval(samples: Iterable[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """The median's distribution-free confidence interval: the order statistics x(l) and x(n+1-l) with
    the largest l for which P(Binomial(n, 1/2) < l) stays within (1 - confidence) / 2. It holds for
    any distribution of the samples (no normality assumed); None where n is too small for one (n < 6
    at 95 %)."""
    ordered = sorted(samples)
    n = len(ordered)
    rank = _lower_rank(n, (1 - confidence) / 2)
    if rank == 0:
        return None
    return ordered[rank - 1], ordered[n - rank]


# Student's t, 97.5th percentile, by degrees of freedom: a two-sided 95 % interval from a few block medians.
_T975 = {2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
REPEAT_BLOCKS = 10
ROUNDS_PER_BLOCK = 3


def repeat_interval(samples_in_order: Iterable[float]) -> tuple[float, float] | None:
    """Where the median of another run of the cell is expected, at 95 %: the run's median ± t(k-1) x the
    standard deviation of the medians of k time-ordered blocks of the rounds x sqrt(1 + 1/k) (k = 10, fewer
    where there are under 30 rounds, at least 3 rounds a block), never narrower than ``median_interval`` and
    never below 0.

    The order-statistics interval assumes independent rounds, so it narrows with every round even while
    the machine's speed drifts; the blocks' medians move with the drift, and their spread says how far
    another stretch of time, such as the next run, may read. None under 9 rounds (3 blocks)."""
    samples = list(samples_in_order)
    blocks = min(REPEAT_BLOCKS, len(samples) // ROUNDS_PER_BLOCK)
    if blocks < 3:
        return None
    size = len(samples) / blocks
    medians = [statistics.median(samples[round(i * size):round((i + 1) * size)]) for i in range(blocks)]
    median = statistics.median(samples)
    half = _T975[blocks - 1] * statistics.stdev(medians) * math.sqrt(1 + 1 / blocks)
    within = median_interval(samples) or (median, median)
    return max(0.0, min(median - half, within[0])), max(median + half, within[1])  # no latency is below 0


DRIFT_Z = 2.0  # the sentinel's spread is a standard deviation: about 95 % of another run's level lies within 2 of it


def session_drift(readings_s: Iterable[float]) -> float | None:
    """How much the machine's speed moved over the session, relative: the standard deviation of the sentinel's
    readings over their median (``measure/sentinel.py``); None under 2 readings."""
    readings = [float(r) for r in readings_s]
    if len(readings) < 2 or statistics.median(readings) <= 0:
        return None
    return statistics.stdev(readings) / statistics.median(readings)


def widen_for_drift(repeat: tuple[float, float], median: float, drift: float) -> tuple[float, float]:
    """The repeat interval with the session's drift added: each side's distance from the median and
    ``DRIFT_Z`` x ``drift`` x the median added in quadrature (the rounds' spread and the machine's moves
    between runs are independent); never below 0."""
    between = DRIFT_Z * drift * median
    low = median - math.hypot(median - repeat[0], between)
    high = median + math.hypot(repeat[1] - median, between)
    return max(0.0, low), high


def _lower_rank(n: int, tail: float) -> int:
    """The largest l (1-based, 0 if none) with P(Binomial(n, 1/2) < l) <= ``tail``."""
    if n <= EXACT_RANKS_UP_TO:
        mass, rank = 0.0, 0
        while rank < n // 2 and mass + math.comb(n, rank) / 2**n <= tail:
            mass += math.comb(n, rank) / 2**n
            rank += 1
        return rank
    # Start from the normal approximation and settle on the exact rank with the binomial's terms in
    # floats, summed from 12 standard deviations below the mean (what lies further down is < 1e-30).
    sd = math.sqrt(n) / 2
    first = max(0, math.floor(n / 2 - 12 * sd))
    log_all = math.lgamma(n + 1) - n * math.log(2)

    def below(rank: int) -> float:  # P(Binomial(n, 1/2) < rank)
        return sum(math.exp(log_all - math.lgamma(k + 1) - math.lgamma(n - k + 1)) for k in range(first, rank))

    rank = math.floor(n / 2 + 0.5 - statistics.NormalDist().inv_cdf(1 - tail) * sd)
    while below(rank + 1) <= tail:
        rank += 1
    while rank > 0 and below(rank) > tail:
        rank -= 1
    return rank

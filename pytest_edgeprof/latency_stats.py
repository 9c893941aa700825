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


# Student's t, 97.5th percentile, by degrees of freedom: a two-sided 95 % interval from a few block medians or reruns.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 12: 2.179,
         15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}


def _t975(degrees: int) -> float:
    """t's 97.5th percentile at the table's largest degrees of freedom not above ``degrees`` (>= 1): a little wide."""
    return _T975[max(df for df in _T975 if df <= degrees)]


REPEAT_BLOCKS = 10
ROUNDS_PER_BLOCK = 3


def repeat_interval(samples_in_order: Iterable[float]) -> tuple[float, float] | None:
    """Where the median of another run of the cell is expected, at 95 %, as far as this run's rounds show: the
    run's median ± t(k-1) x the spread of the medians of k time-ordered blocks of the rounds x sqrt(1 + 1/k)
    (k = 10, fewer where there are under 30 rounds, at least 3 rounds a block), never narrower than
    ``median_interval`` and never below 0. The spread is 1.4826 x the block medians' median absolute deviation:
    a standard deviation where they are normal, and one block that a preemption slowed (which barely moves
    the run's median) does not widen it, as it widened a standard deviation to ±30-50 % on the project's machine.

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
    center = statistics.median(medians)
    spread = 1.4826 * statistics.median(abs(block - center) for block in medians)
    half = _t975(blocks - 1) * spread * math.sqrt(1 + 1 / blocks)
    within = median_interval(samples) or (median, median)
    return max(0.0, min(median - half, within[0])), max(median + half, within[1])  # no latency is below 0


RERUN_PAIRS = 1  # earlier reruns (pairs of consecutive medians) needed for a rerun spread: t(n) keeps few honest
RANKED_FROM = 19  # from this many ratios on, the 95 % bound is one of them: ceil(0.95 x (n + 1)) <= n


def rerun_spread(log_ratios: Iterable[float]) -> float | None:
    """How far a rerun's median lies from a run's, at 95 %, relative, from ``log_ratios``: ln(median of a run /
    median of the run before it) of the same cells on this machine. From ``RANKED_FROM`` ratios on, the
    ceil(0.95 x (n + 1))-th smallest of their sizes: the next ratio, drawn from the same distribution, is at most that
    with probability 95 %, whatever the distribution. Below, t(n) x their root mean square (their mean taken as 0:
    the same code, so no change is expected). None under ``RERUN_PAIRS`` ratios.

    Why ranks once there are enough: reruns here are heavy-tailed (one process in 20 to 40 ran 20-90 % slow), and a
    root mean square lets that one ratio widen every interval to ±20 %, where 95 % of reruns lay within ±8 %.
    Each ratio already holds both runs' noise, whatever its source (the rounds' spread, the machine's speed, a
    process's memory layout or core), so the result is the interval's half-width on its own, not a term to add."""
    ratios = [float(r) for r in log_ratios]
    if len(ratios) < RERUN_PAIRS:
        return None
    if len(ratios) >= RANKED_FROM:
        return math.expm1(sorted(abs(r) for r in ratios)[math.ceil(0.95 * (len(ratios) + 1)) - 1])
    return math.expm1(_t975(len(ratios)) * math.sqrt(math.fsum(r * r for r in ratios) / len(ratios)))


def widen_for_rerun(repeat: tuple[float, float], median: float, spread: float) -> tuple[float, float]:
    """The repeat interval at least ``spread`` (relative) wide on each side of the median; never below 0."""
    return max(0.0, min(repeat[0], median * (1 - spread))), max(repeat[1], median * (1 + spread))


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

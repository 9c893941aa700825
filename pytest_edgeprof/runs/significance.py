"""Whether a latency change between two saved runs is more than noise: B's median lies beyond where a rerun of A
was expected, by the two runs' repeat intervals pooled.

Each timed cell saves ``latency_ms_repeat95``: where another run's median is expected at 95 %, from the rounds'
time-ordered blocks and the spread of this machine's earlier reruns (docs/timing.md). Such an interval holds both runs' noise already (it is about a rerun's median, not this run's), so
a rerun of the same code lands beyond its half-width 5 % of the time; the gate asks that B's median lie beyond the
root mean square of A's half-width on the worse side and B's on the better side (both estimate the same spread). Runs
saved before the repeat interval fall back to ``latency_ms_ci95``, the precision of each median alone, whose
half-widths add in quadrature; a cell with neither has no interval, and its significance is unknown (None).

Why not the intervals' overlap (the rule before): where the two are as wide it asks for twice that distance, a test
at far below 5 % that misses most real changes under the intervals' width. Why not a Mann-Whitney U test
on the rounds (docs/answers.md): the rounds are saved only with ``--benchmark-save-data``, while the intervals are
always saved; and a rank test on rounds assumes independent rounds, so with hundreds of rounds it calls a 1 % drift
between two runs of the same code significant at p < 0.001, which is the false alarm the gate must not raise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytest_edgeprof.metrics import LATENCY, THROUGHPUT, Metric
from pytest_edgeprof.runs.saved import SavedCell

JUDGED = (LATENCY, THROUGHPUT)  # metrics read from the latency's median: judged by its intervals
TEST_NAME = "beyond the 95 % repeat intervals pooled"
REPEAT_KEY = "latency_ms_repeat95"


@dataclass(frozen=True)
class Intervals:
    """A metric's values and 95 % intervals in A and in B (in the metric's unit), and which saved key each came from."""

    value_a: float
    value_b: float
    a: tuple[float, float]
    b: tuple[float, float]
    key_a: str
    key_b: str

    def margin(self, worse: str) -> float:
        """How far B's value must lie on the worse side of A's to be more than noise."""
        higher = worse == "higher"
        half_a = self.a[1] - self.value_a if higher else self.value_a - self.a[0]
        half_b = self.value_b - self.b[0] if higher else self.b[1] - self.value_b
        squares = half_a**2 + half_b**2
        return math.sqrt(squares / 2 if self.key_a == self.key_b == REPEAT_KEY else squares)

    def significant(self, worse: str) -> bool:
        """B's value lies beyond ``margin`` on the worse side of A's (``worse``: "higher" or "lower")."""
        change = self.value_b - self.value_a if worse == "higher" else self.value_a - self.value_b
        return change > self.margin(worse)


def intervals(metric: Metric, a: SavedCell, b: SavedCell) -> Intervals | None:
    """The metric's values and intervals in both cells; None where it is not judged by them or either cell has none."""
    if metric not in JUDGED:
        return None
    in_a, in_b = _interval(metric, a), _interval(metric, b)
    value_a, value_b = a.measurement.value(metric), b.measurement.value(metric)
    if in_a is None or in_b is None or value_a is None or value_b is None:
        return None
    return Intervals(value_a, value_b, in_a[0], in_b[0], in_a[1], in_b[1])


def _interval(metric: Metric, cell: SavedCell) -> tuple[tuple[float, float], str] | None:
    latency = cell.measurement.latency
    if latency is None:
        return None
    ms, key = ((latency.repeat95_ms, REPEAT_KEY) if latency.repeat95_ms is not None
               else (latency.ci95_ms, "latency_ms_ci95"))
    if ms is None:
        return None
    if metric is LATENCY:
        return ms, key
    low, high = ms  # throughput is batch / latency: the interval's ends swap
    batch = cell.cell.batch_size
    if low <= 0:
        return None
    return (batch / (high / 1e3), batch / (low / 1e3)), key

"""Whether a latency change between two saved runs is more than noise: their repeat intervals do not overlap.

Each timed cell saves ``latency_ms_repeat95``: where another run's median is expected at 95 %, from the
rounds' time-ordered blocks and the session's drift the sentinel saw (docs/timing.md). Two runs of the
same code whose intervals do not overlap differ by more than either run expects of the next, so the change
is the code's or the setup's. Runs saved before the repeat interval fall back to ``latency_ms_ci95``;
a cell with neither has no interval, and its significance is unknown (None).

Why intervals and not a Mann-Whitney U test on the rounds (docs/answers.md): the rounds themselves are saved
only with ``--benchmark-save-data``, while the intervals are always saved; and a rank test on rounds
assumes independent rounds, so with hundreds of rounds it calls a 1 % drift between two runs of the same
code significant at p < 0.001, which is the false alarm the gate must not raise.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_edgeprof.metrics import LATENCY, THROUGHPUT, Metric
from pytest_edgeprof.runs.saved import SavedCell

JUDGED = (LATENCY, THROUGHPUT)  # metrics read from the latency's median: judged by its intervals
TEST_NAME = "non-overlapping 95 % repeat intervals"


@dataclass(frozen=True)
class Intervals:
    """A metric's 95 % intervals in A and in B (in the metric's unit), and which saved key each came from."""

    a: tuple[float, float]
    b: tuple[float, float]
    key_a: str
    key_b: str

    def significant(self, worse: str) -> bool:
        """B's interval lies wholly on the worse side of A's (``worse``: "higher" or "lower")."""
        return self.b[0] > self.a[1] if worse == "higher" else self.b[1] < self.a[0]


def intervals(metric: Metric, a: SavedCell, b: SavedCell) -> Intervals | None:
    """The metric's intervals in both cells; None where it is not judged by them or either cell has none."""
    if metric not in JUDGED:
        return None
    in_a, in_b = _interval(metric, a), _interval(metric, b)
    if in_a is None or in_b is None:
        return None
    return Intervals(in_a[0], in_b[0], in_a[1], in_b[1])


def _interval(metric: Metric, cell: SavedCell) -> tuple[tuple[float, float], str] | None:
    latency = cell.measurement.latency
    if latency is None:
        return None
    ms, key = ((latency.repeat95_ms, "latency_ms_repeat95") if latency.repeat95_ms is not None
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

"""``edgeprof capacity``: the largest batch that fits a memory budget, found by measuring.

Each probe runs one batch in a fresh child process (``isolation.py``), so a probe that runs out of
memory, or is killed for it, cannot poison the next. The search doubles the batch until a probe does
not fit, then narrows the bracket. Memory grows about linearly with the batch, so once two probes
fit, the next probe is the batch the line through them predicts (clamped into the bracket, bisection
where there is no prediction): most searches end within ceil(log2(B)) + 2 probes for an answer B.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_edgeprof.device import DeviceProfile
from pytest_edgeprof.measure.isolation import IsolatedJob, run_isolated
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.metrics import format_bytes
from pytest_edgeprof.models.variants import ModelRef
from pytest_edgeprof.outcome import Outcome

MAX_BATCH = 1 << 16


@dataclass(frozen=True)
class Probe:
    batch: int
    fits: bool
    peak_mem_bytes: int | None  # None when the probe ran out of memory or failed
    outcome: Outcome  # passed (fits), over-budget, out-of-memory or failed
    error: str = ""  # why a failed probe failed

    def line(self) -> str:
        peak = f"peak memory {format_bytes(self.peak_mem_bytes)}" if self.peak_mem_bytes is not None else "no figure"
        return f"probe b={self.batch}: {peak}, {self._verdict()}"

    def _verdict(self) -> str:
        if self.outcome is Outcome.PASSED:
            return "fits"
        return f"failed: {self.error}" if self.outcome is Outcome.FAILED else self.outcome.words


@dataclass
class CapacityReport:
    model: str
    variant: str
    input_shape: tuple[int, int, int]
    device: str
    budget_bytes: int
    probes: list[Probe] = field(default_factory=list)
    largest: int = 0  # 0: not even batch 1 fits

    def summary(self) -> str:
        if not self.largest:
            return f"answer: none: batch 1 does not fit in {format_bytes(self.budget_bytes)} ({len(self.probes)} probes)"
        fitted = next(p for p in self.probes if p.batch == self.largest)
        return (f"answer: batch {self.largest} (peak memory {format_bytes(fitted.peak_mem_bytes or 0)} "
                f"within {format_bytes(self.budget_bytes)}; {len(self.probes)} probes)")

    def to_json(self, extra: dict[str, Any] | None = None) -> str:
        """The report as JSON, with ``extra`` keys (the command's timings) after its own."""
        return json.dumps({**asdict(self), **(extra or {})})


def find_capacity(
    ref: ModelRef,
    input_shape: tuple[int, int, int],
    profile: DeviceProfile,
    budget_bytes: int,
    on_probe: Callable[[Probe], None] | None = None,
) -> CapacityReport:
    report = CapacityReport(ref.name, ref.variant, input_shape, profile.name, budget_bytes)

    def probe(batch: int) -> Probe:
        result = _probe(ref, input_shape, profile, budget_bytes, batch)
        if on_probe:
            on_probe(result)
        return result

    report.largest, report.probes = search(probe, budget_bytes)
    return report


def search(probe: Callable[[int], Probe], budget_bytes: int) -> tuple[int, list[Probe]]:
    """The largest batch whose probe fits (0 if batch 1 does not), and the probes it took."""
    probes: list[Probe] = []
    peaks: dict[int, int] = {}  # batch -> measured peak bytes, fitting or not
    largest_fit, smallest_miss = 0, None
    batch: int | None = 1
    while batch is not None:
        result = probe(batch)
        probes.append(result)
        if result.peak_mem_bytes is not None:
            peaks[batch] = result.peak_mem_bytes
        if result.fits:
            largest_fit = batch
        else:
            smallest_miss = batch
        batch = _next_batch(peaks, largest_fit, smallest_miss, budget_bytes)
    return largest_fit, probes


def _next_batch(peaks: dict[int, int], largest_fit: int, smallest_miss: int | None, budget: int) -> int | None:
    """The next batch to probe, or None when the answer is known (or is MAX_BATCH)."""
    if largest_fit in (0, MAX_BATCH) or (smallest_miss is not None and smallest_miss == largest_fit + 1):
        return None
    predicted = _predicted_largest(peaks, largest_fit, smallest_miss, budget)
    if smallest_miss is None:  # nothing failed yet: the prediction, else double
        if predicted is None or predicted < largest_fit or _crawling(peaks, largest_fit):
            return min(2 * largest_fit, MAX_BATCH)
        return min(max(predicted, largest_fit + 1), MAX_BATCH)
    if predicted is None:
        return (largest_fit + smallest_miss) // 2
    # The answer B is confirmed by B fitting and B + 1 not: probe whichever side is still open.
    return min(max(predicted + (predicted == largest_fit), largest_fit + 1), smallest_miss - 1)


def _crawling(peaks: dict[int, int], largest_fit: int) -> bool:
    """The line keeps saying "this is the last batch that fits" and is wrong: double instead."""
    return largest_fit > 3 and largest_fit - 1 in peaks and largest_fit - 2 in peaks  # 1, 2, 3 is the start


def _predicted_largest(peaks: dict[int, int], largest_fit: int, smallest_miss: int | None, budget: int) -> int | None:
    """Where the line through the probes nearest the budget crosses it: between the largest batch that
    fits and the smallest that does not when both were measured, else through the two largest that fit."""
    if smallest_miss in peaks and largest_fit in peaks:
        (b1, m1), (b2, m2) = (largest_fit, peaks[largest_fit]), (smallest_miss, peaks[smallest_miss])
    else:
        below = sorted(b for b in peaks if b <= largest_fit)[-2:]
        if len(below) < 2:
            return None
        (b1, m1), (b2, m2) = [(b, peaks[b]) for b in below]
    slope = (m2 - m1) / (b2 - b1)
    if slope <= 0:
        return None
    return b1 + int((budget - m1) // slope)


def _probe(ref: ModelRef, input_shape: tuple[int, int, int], profile: DeviceProfile, budget: int, batch: int) -> Probe:
    cell = Cell(ref.name, ref.variant, batch, input_shape)
    measurement = run_isolated(IsolatedJob(cell, profile, model=ref, probe_only=True, no_energy=True))
    peak = measurement.memory.peak_mem_bytes if measurement.memory is not None else None
    if measurement.outcome is Outcome.OUT_OF_MEMORY:
        return Probe(batch, False, None, Outcome.OUT_OF_MEMORY)
    if measurement.outcome is not Outcome.PASSED or peak is None:
        return Probe(batch, False, None, Outcome.FAILED, measurement.error)
    return Probe(batch, peak <= budget, peak, Outcome.PASSED if peak <= budget else Outcome.OVER_BUDGET)

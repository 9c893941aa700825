"""Device-aware timing: a clock that waits for the device, per-call CUDA events, and warm-up.

Nothing here knows about pytest; a notebook can time a model with ``warm_up`` and ``CallRecorder``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pytest_edgeprof.errors import EdgeprofWarning
from pytest_edgeprof.measurement import median_interval


def synchronizer(device: str) -> Callable[[], None]:
    """A function that returns once ``device`` has finished all work queued so far."""
    if device.startswith("cuda"):
        index = torch.device(device)
        return lambda: torch.cuda.synchronize(index)
    return lambda: None


class CallRecorder:
    """Wraps a call so each invocation's device latency is recorded.

    On CUDA each call is bracketed by CUDA events (device time, no host jitter) and the wrapper
    waits for the device before returning, so a host clock around it is honest too. On the CPU the
    call is timed with ``perf_counter``.
    """

    def __init__(self, fn: Callable[[], object], device: str) -> None:
        self._fn = fn
        self._sync = synchronizer(device)
        self._cuda = device.startswith("cuda")
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._host_times: list[float] = []

    def __call__(self) -> object:
        if self._cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            result = self._fn()
            end.record()
            self._sync()
            self._events.append((start, end))
            return result
        began = time.perf_counter()
        result = self._fn()
        self._host_times.append(time.perf_counter() - began)
        return result

    @property
    def method(self) -> str:
        return "cuda-events" if self._cuda else "perf_counter"

    @property
    def calls(self) -> int:
        """Calls recorded since the last ``clear``."""
        return len(self._events) + len(self._host_times)

    def latencies_s(self) -> list[float]:
        """Every recorded call's latency in seconds, oldest first."""
        if self._cuda:
            return [start.elapsed_time(end) / 1e3 for start, end in self._events]
        return list(self._host_times)

    def clear(self) -> None:
        self._events.clear()
        self._host_times.clear()


WARM_UP_S = 10.0  # warm-up's time bound where the user gave no shorter --benchmark-max-time
WARM_UP_MIN_S = 1.0  # and the least a --benchmark-max-time makes it


class WarmUpWarning(EdgeprofWarning):
    """Warm-up reached its time bound before the timings settled."""


@dataclass(frozen=True)
class WarmUpResult:
    calls: int
    seconds: float
    settled: bool  # False when the time limit ended warm-up before the timings settled
    median_s: float  # median of the last window of calls
    bounded: bool = False  # the time limit ended it (not the call limit, nor settling)


def warm_up(
    fn: Callable[[], object],
    device: str,
    *,
    window: int = 3,
    tolerance: float = 0.05,
    max_seconds: float = WARM_UP_S,
    max_calls: int = 500,
) -> WarmUpResult:
    """Call ``fn`` until its timings settle: two consecutive windows' medians within ``tolerance``;
    at most ``max_seconds`` (one call at least) or ``max_calls``, then ``settled`` is False.

    Runs outside any timed region. Caches, the allocator, cuDNN's algorithm choice and lazy
    initialisation all make the first calls slow; how many calls that takes depends on the model and
    the device, so this watches the timings instead of running a fixed count.
    """
    sync = synchronizer(device)
    times: list[float] = []
    began = time.perf_counter()
    while True:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - began
        if len(times) >= 2 * window:
            previous = statistics.median(times[-2 * window : -window])
            latest = statistics.median(times[-window:])
            if abs(latest - previous) <= tolerance * previous:
                return WarmUpResult(len(times), elapsed, True, latest)
        if elapsed >= max_seconds or len(times) >= max_calls:
            return WarmUpResult(len(times), elapsed, False, statistics.median(times[-window:]), elapsed >= max_seconds)


@dataclass(frozen=True)
class Rounds:
    latencies_s: list[float]  # one call each, oldest first
    stable: bool  # the stopping rule reached its precision before its ceiling


@dataclass(frozen=True)
class StoppingRule:
    """When the timed rounds end: as soon as the median's 95 % confidence interval (distribution-free,
    from order statistics) lies within ``precision`` of the median on both sides, once at least
    ``min_rounds`` rounds and ``min_time_s`` have passed; at ``max_time_s`` (pytest-benchmark's
    ``--benchmark-max-time``) at the latest, then marked not stable."""

    precision: float = 0.01
    min_rounds: int = 5
    min_time_s: float = 0.1
    max_time_s: float = 1.0

    def run(self, recorder: CallRecorder) -> Rounds:
        """Call ``recorder`` one round at a time until the rule is met or the ceiling is reached."""
        began, check_at = time.perf_counter(), max(self.min_rounds, 6)
        while True:
            recorder()
            elapsed, rounds = time.perf_counter() - began, recorder.calls
            if rounds >= check_at and elapsed >= self.min_time_s:
                latencies = recorder.latencies_s()
                if self.precise(latencies):
                    return Rounds(latencies, True)
                check_at = max(rounds + 1, int(rounds * 1.1))  # sorting every round would cost O(n² log n)
            if elapsed >= self.max_time_s and rounds >= self.min_rounds:
                latencies = recorder.latencies_s()
                return Rounds(latencies, self.precise(latencies))

    def precise(self, latencies_s: list[float]) -> bool:
        interval = median_interval(latencies_s)
        if interval is None:
            return False
        median = statistics.median(latencies_s)
        return median - interval[0] <= self.precision * median and interval[1] - median <= self.precision * median


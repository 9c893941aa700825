"""What every energy source shares: the reading, the meter protocol, and integrating sampled power.

A meter is started and stopped around a window and gives an ``EnergyReading``. Sources that read
power rather than energy (``nvml-power``, ``jetson-ina3221``) use ``SampledPowerMeter``: a daemon
thread samples at 20 Hz and the window's energy is the trapezoid integral over the timestamped
samples, never an average of averages. A reading over a window shorter than the source's
``min_window_s``, or sampled below 10 Hz, has ``joules=None`` and says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from pytest_edgeprof.measure.energy.co2 import co2_kg

SAMPLE_INTERVAL_S = 0.05  # 20 Hz: twice the 10 Hz minimum docs/energy.md sets, so a late tick still keeps it
MIN_SAMPLE_HZ = 10.0


@dataclass(frozen=True)
class EnergyReading:
    """Energy over one measured window, and where it came from."""

    joules: float | None  # None when the source cannot support a figure for this window
    seconds: float  # length of the measured window
    source: str  # 'nvml-counter' | 'nvml-power' | 'jetson-ina3221' | 'rapl' | 'codecarbon-estimate' | 'none'
    samples: int  # how many readings went into it
    reason: str = ""  # why joules is None, or a caveat ("module input", "estimate")
    co2_kg: float | None = None  # CodeCarbon's emissions figure for these joules

    @property
    def avg_power_w(self) -> float | None:
        if self.joules is None or self.seconds <= 0:
            return None
        return self.joules / self.seconds


class EnergyMeter(Protocol):
    source: str
    min_window_s: float  # shortest window this source can support a figure for

    def start(self) -> None: ...

    def stop(self) -> EnergyReading: ...

    def close(self) -> None: ...


class SourceUnavailable(Exception):
    """A power source is not present or not readable here; the message says which and why."""


def trapezoid_joules(samples: Sequence[tuple[float, float]]) -> float:
    """Integral of power over time: ``samples`` are (perf_counter seconds, watts), in time order."""
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(samples, samples[1:]))


def _too_short(reading: EnergyReading, min_window_s: float) -> EnergyReading:
    """Drop the figure when the window is shorter than the source supports."""
    if reading.joules is None or reading.seconds >= min_window_s:
        return reading
    why = f"window {reading.seconds:.3f} s is shorter than the {min_window_s:g} s {reading.source} needs"
    return replace(reading, joules=None, co2_kg=None, reason=why)


class _Ticker:
    """Calls ``tick`` every ``interval_s`` seconds in a daemon thread, between start() and stop()."""

    def __init__(self, tick: Callable[[], None], interval_s: float) -> None:
        self._tick = tick
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgeprof-energy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self._tick()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


class SampledPowerMeter:
    """Samples a power reading in a thread and integrates it (nvml-power, jetson-ina3221)."""

    def __init__(
        self,
        source: str,
        read_watts: Callable[[], float],
        *,
        reason: str = "",
        min_window_s: float = 1.0,
        interval_s: float = SAMPLE_INTERVAL_S,
        country_iso_code: str | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.min_window_s = min_window_s
        self.reason = reason
        self.last_samples: tuple[tuple[float, float], ...] = ()  # the last window's (t, watts)
        self._read_watts = read_watts
        self._interval_s = interval_s
        self._country = country_iso_code
        self._on_close = on_close
        self._samples: list[tuple[float, float]] = []
        self._error: Exception | None = None
        self._ticker: _Ticker | None = None

    def _sample(self) -> None:
        try:
            watts = self._read_watts()
        except Exception as error:  # a failed read must not kill the thread; stop() reports it
            self._error = self._error or error
            return
        self._samples.append((time.perf_counter(), watts))

    def start(self) -> None:
        self._samples, self._error = [], None
        self._sample()
        self._ticker = _Ticker(self._sample, self._interval_s)

    def stop(self) -> EnergyReading:
        if self._ticker is None:
            raise RuntimeError(f"{self.source} meter stopped before it was started")
        self._ticker.stop()
        self._ticker = None
        self._sample()
        samples = self.last_samples = tuple(self._samples)
        seconds = samples[-1][0] - samples[0][0] if len(samples) > 1 else 0.0
        reading = EnergyReading(None, seconds, self.source, len(samples), self.reason)
        if self._error is not None:
            return replace(reading, reason=f"power reading failed: {self._error}")
        joules = trapezoid_joules(samples)
        reading = _too_short(replace(reading, joules=joules), self.min_window_s)
        rate_hz = (len(samples) - 1) / seconds if seconds > 0 else 0.0
        if reading.joules is not None and rate_hz < MIN_SAMPLE_HZ:
            why = f"power sampled at {rate_hz:.1f} Hz, below the {MIN_SAMPLE_HZ:g} Hz the integral needs"
            return replace(reading, joules=None, reason=why)
        return replace(reading, co2_kg=co2_kg(reading.joules, self._country))

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


class NoEnergyMeter:
    """What open_energy_meter gives when no source fits the device: every reading says why."""

    source = "none"
    min_window_s = 0.0

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        seconds = time.perf_counter() - (self._t0 or time.perf_counter())
        return EnergyReading(None, seconds, self.source, 0, self.reason)

    def close(self) -> None:
        pass

"""CodeCarbon's estimate of CPU + RAM energy, for a CPU cell on a machine without a power sensor.

A model, not a measurement, and labelled ``codecarbon-estimate``: CPU power from CPU load x TDP,
RAM power from the RAM size. Runs offline, writes no files. Verified on hardware: the 2-vCPU
development VM (x86, no RAPL, no GPU); docs/energy.md has its figures and overhead.
"""

from __future__ import annotations

import time
from typing import Any

from pytest_edgeprof.measure.energy.base import EnergyReading, _too_short
from pytest_edgeprof.measure.energy.co2 import JOULES_PER_KWH, _codecarbon

# CodeCarbon samples CPU load every second whatever measure_power_secs says (its monitor thread).
CODECARBON_MONITOR_INTERVAL_S = 1.0


class CodeCarbonMeter:
    """CodeCarbon's OfflineEmissionsTracker, one task per window: no network, no files, quiet.

    Without RAPL, CodeCarbon models CPU power from CPU load and a TDP (its table, or 4 W per
    thread for a CPU it does not know) and RAM power from the RAM size (5 W per assumed DIMM).
    During a task it samples load once a second and integrates at the task's end. Its figure is
    that modelled power times the window's time, so the window needs no length of its own: a
    cell's energy is estimated over its timed rounds alone, no calls added (``min_samples`` 0; on
    the development VM 0.1-1 s windows read the same power as 3 s ones within 0.3 %, docs/energy.md).
    ``min_samples`` > 0 asks for windows of that many of the monitor's 1 s samples. A CPU cell
    counts CPU + RAM only; a GPU that CodeCarbon may see is left out. ``tracking_mode="machine"``
    (the default, like RAPL and NVML) counts every process's CPU load; ``"process"`` counts this
    process's share.
    """

    source = "codecarbon-estimate"

    def __init__(
        self,
        *,
        country_iso_code: str | None = None,
        min_samples: int = 0,
        tracking_mode: str = "machine",
    ) -> None:
        tracker_class = _codecarbon().OfflineEmissionsTracker
        self.min_window_s = min_samples * CODECARBON_MONITOR_INTERVAL_S
        # One tracker for all windows: its hardware probe (lscpu, nvidia-smi, ...) runs once.
        self._tracker: Any = tracker_class(
            country_iso_code=country_iso_code,
            output_methods=[],  # no emissions.csv, no API, no logger output
            emissions_endpoint=None,
            electricitymaps_api_token="",  # "" (not None) so a configured token cannot be picked up
            allow_multiple_runs=True,  # no lock file
            tracking_mode=tracking_mode,
            pue=1.0,
            log_level="error",
        )
        self._t0: float | None = None

    def start(self) -> None:
        self._tracker.start_task()
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        if self._t0 is None:
            raise RuntimeError("codecarbon meter stopped before it was started")
        seconds = time.perf_counter() - self._t0
        self._t0 = None
        # the 1 s monitor's samples so far, and the one stop_task takes
        samples = len(getattr(self._tracker, "_cpu_utilization_history", ())) + 1
        data = self._tracker.stop_task()
        if data is None or data.duration <= 0:
            return EnergyReading(None, seconds, self.source, samples, "CodeCarbon gave no figure")
        # CodeCarbon's task duration includes its own start/stop work: scale its power to our window.
        cpu_w = data.cpu_energy * JOULES_PER_KWH / data.duration
        ram_w = data.ram_energy * JOULES_PER_KWH / data.duration
        joules = (cpu_w + ram_w) * seconds
        share = (data.cpu_energy + data.ram_energy) / data.energy_consumed if data.energy_consumed else 0.0
        co2 = data.emissions * share * seconds / data.duration
        reason = f"estimate: CPU {cpu_w:.1f} W from load x TDP, RAM {ram_w:.1f} W from RAM size"
        reading = EnergyReading(joules, seconds, self.source, samples, reason, co2)
        return _too_short(reading, self.min_window_s)

    def close(self) -> None:
        if self._t0 is not None:
            self._tracker.stop_task()
            self._t0 = None
        self._tracker.stop()

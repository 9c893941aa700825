"""What the device was doing while a cell was timed: load, clocks, governor, temperatures, throttling.

Read before and after the timed rounds and saved as ``device_state``, so that a soft number (rounds
that did not reach their precision, or a wide spread) comes with its likely cause: other processes
busy, a CPU governor other than ``performance`` or a frequency that moved, a temperature near its trip
point, on CUDA the throttle reasons NVML reports, on a Jetson the power mode.

Read from Linux's sysfs (``/sys/devices/system/cpu/cpu*/cpufreq``, ``/sys/class/thermal``), procfs
(load average) and NVML; what a machine does not expose is left out, never guessed. Verified on this
project's x86 VM (load average; it exposes no cpufreq nor thermal zones) and on fake sysfs trees laid
out like the kernel's; the NVML and Jetson parts have not run on hardware yet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

NEAR_TRIP_C = 10.0  # a zone this close to its lowest trip point may already be throttling
BUSY_LOAD_PER_CORE = 0.5  # load beyond this run's threads above this share of the cores: other work competes


def read_state(device: str, sysfs_root: Path = Path("/"), jetson_power_mode: str | None = None) -> dict[str, Any]:
    """One reading of the host (and, for ``cuda:N``, the GPU) as plain JSON values."""
    state: dict[str, Any] = {"load_average_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
                             "threads": torch.get_num_threads()}
    state.update(_cpufreq(sysfs_root))
    state.update(_thermal(sysfs_root))
    if device.startswith("cuda"):
        state.update(_nvml(int(device.split(":")[1]) if ":" in device else 0))
    if jetson_power_mode:
        state["jetson_power_mode"] = jetson_power_mode
    return state


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cpufreq(root: Path) -> dict[str, Any]:
    governors, mhz = set(), []
    for folder in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq")):
        if (governor := _read(folder / "scaling_governor")) is not None:
            governors.add(governor)
        if (khz := _read(folder / "scaling_cur_freq")) is not None and khz.isdigit():
            mhz.append(int(khz) // 1000)
    found: dict[str, Any] = {}
    if governors:
        found["cpu_governors"] = sorted(governors)
    if mhz:
        found["cpu_mhz_min"], found["cpu_mhz_max"] = min(mhz), max(mhz)
    return found


def _thermal(root: Path) -> dict[str, Any]:
    zones: dict[str, dict[str, float]] = {}
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        temp = _read(zone / "temp")
        if temp is None or not temp.lstrip("-").isdigit():
            continue
        trips = [int(t) / 1000 for p in zone.glob("trip_point_*_temp") if (t := _read(p)) and t.lstrip("-").isdigit()]
        name = _read(zone / "type") or zone.name
        zones[name] = {"temp_c": int(temp) / 1000, **({"trip_c": min(t for t in trips if t > 0)} if any(t > 0 for t in trips) else {})}
    return {"thermal_zones": zones} if zones else {}


def hottest_c(root: Path = Path("/")) -> float | None:
    """The hottest thermal zone's temperature in C; None where no zone is readable (``--cooldown until=``)."""
    zones = _thermal(root).get("thermal_zones", {})
    return max((zone["temp_c"] for zone in zones.values()), default=None)


_THROTTLE_REASONS = {  # NVML's clocksThrottleReasons bits that mean the GPU was held back
    0x2: "applications clocks setting", 0x4: "software power cap", 0x8: "hardware slowdown",
    0x20: "software thermal slowdown", 0x40: "hardware thermal slowdown", 0x80: "hardware power brake",
}


def _nvml(index: int) -> dict[str, Any]:
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        reasons = pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)
        return {
            "gpu_sm_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "gpu_memory_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "gpu_temp_c": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
            "gpu_power_limit_w": pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
            "gpu_throttle_reasons": [text for bit, text in _THROTTLE_REASONS.items() if reasons & bit],
        }
    except Exception:  # no NVML, no such GPU: the reading simply has no GPU part
        return {}


def load_beyond(load: float, cores: int, threads: int) -> float:
    """The load beyond this run's own threads where it is more than BUSY_LOAD_PER_CORE of the cores (other
    processes compete for them), else 0."""
    beyond = load - threads
    return round(beyond, 2) if beyond > BUSY_LOAD_PER_CORE * cores else 0.0


def likely_causes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What in the two readings would make timings soft, one phrase each; [] when nothing shows."""
    causes = []
    load, cores = max(before.get("load_average_1m", 0), after.get("load_average_1m", 0)), after.get("cores") or 1
    own = after.get("threads", 0)  # the measured model's own threads keep that many cores busy
    if load_beyond(load, cores, own):
        causes.append(f"other processes busy (load average {load:g} on {cores} cores, this run uses {own} threads)")
    governors = set(before.get("cpu_governors", [])) | set(after.get("cpu_governors", []))
    if governors - {"performance"}:
        causes.append(f"CPU governor {', '.join(sorted(governors))}, not performance")
    if "cpu_mhz_max" in before and "cpu_mhz_max" in after and before["cpu_mhz_max"] != after["cpu_mhz_max"]:
        causes.append(f"CPU frequency moved ({before['cpu_mhz_max']} -> {after['cpu_mhz_max']} MHz)")
    for name, zone in after.get("thermal_zones", {}).items():
        if "trip_c" in zone and zone["trip_c"] - zone["temp_c"] <= NEAR_TRIP_C:
            causes.append(f"{name} at {zone['temp_c']:g} C, near its trip point {zone['trip_c']:g} C")
    if throttled := after.get("gpu_throttle_reasons"):
        causes.append(f"GPU throttled: {', '.join(throttled)}")
    if mode := after.get("jetson_power_mode"):
        causes.append(f"Jetson power mode {mode} (jetson_clocks locks the clocks)")
    return causes

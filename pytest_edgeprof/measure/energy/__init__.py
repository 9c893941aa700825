"""Energy over a measured window, from the best power source the machine has.

Sources, best first (DESIGN.md, "Metrics"):

==================== ====================================================== =========================
source               what is read                                           library
==================== ====================================================== =========================
``nvml-counter``     the GPU's total-energy counter (mJ), Volta and newer   pynvml (nvidia-ml-py)
``nvml-power``       GPU board power (mW) sampled at 20 Hz, integrated      pynvml
``jetson-ina3221``   the module *input* rail (Nano ``POM_5V_IN``, Orin      hand-written sysfs reader
                     ``VDD_IN``) sampled at 20 Hz, integrated
``rapl``             package energy counters under /sys/class/powercap      hand-written sysfs reader
``codecarbon-        CodeCarbon's model: CPU load x TDP, plus RAM size      codecarbon
estimate``           (an estimate, never presented as a measurement)
==================== ====================================================== =========================

A CUDA cell uses NVML (or, on a Jetson, the module input rail); a CPU cell uses the Jetson input
rail, RAPL or CodeCarbon. Energy from sampled power is the trapezoid integral over timestamped
samples, never an average of averages. Every source has a shortest window it can support
(``min_window_s``); a reading over a shorter window has ``joules=None`` and says why.
docs/energy.md says why the sysfs readers are hand-written rather than taken from Zeus.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from pytest_edgeprof.errors import UsageError

SAMPLE_INTERVAL_S = 0.05  # 20 Hz: twice the 10 Hz DESIGN asks for, so a late tick still keeps it
MIN_SAMPLE_HZ = 10.0
JOULES_PER_KWH = 3.6e6

# The board's input rail; every other INA3221 rail is a part of it, so a sum counts twice.
NANO_INPUT_RAIL = "POM_5V_IN"
ORIN_INPUT_RAIL = "VDD_IN"
INPUT_RAILS = (NANO_INPUT_RAIL, ORIN_INPUT_RAIL)

# CodeCarbon samples CPU load every second whatever measure_power_secs says (its monitor thread).
CODECARBON_MONITOR_INTERVAL_S = 1.0


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


# --------------------------------------------------------------------------------------------
# Shared pieces


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


# --------------------------------------------------------------------------------------------
# Jetson: INA3221 rails (Nano: ina3221x iio device; Orin: hwmon devices named ina3221)


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: its label and how to read its power in watts."""

    name: str
    path: Path  # the directory holding the channel's files
    read_watts: Callable[[], float]


def _read_number(path: Path) -> float:
    return float(path.read_text().strip())


def _nano_iio_rails(sysfs_root: Path) -> list[Rail]:
    """L4T 32 (Nano): iio:deviceN/rail_name_K names channel K, in_powerK_input is its power in mW."""
    rails = []
    driver = sysfs_root / "sys/bus/i2c/drivers/ina3221x"
    for device in sorted(driver.glob("*/iio*device*")):
        for name_file in sorted(device.glob("rail_name_*")):
            channel = name_file.name.removeprefix("rail_name_")
            power_file = device / f"in_power{channel}_input"
            if power_file.is_file():
                rails.append(
                    Rail(name_file.read_text().strip(), device, lambda p=power_file: _read_number(p) / 1e3)
                )
    return rails


def _ina3221_hwmon_dirs(sysfs_root: Path) -> list[Path]:
    """hwmon directories whose ``name`` is ina3221, found via /sys/class/hwmon and the i2c driver."""
    candidates = list((sysfs_root / "sys/class/hwmon").glob("hwmon*"))
    candidates += (sysfs_root / "sys/bus/i2c/drivers/ina3221").glob("*/hwmon/hwmon*")
    found: dict[Path, Path] = {}
    for directory in candidates:
        name_file = directory / "name"
        if name_file.is_file() and name_file.read_text().strip() == "ina3221":
            found.setdefault(directory.resolve(), directory)
    return sorted(found.values())


def _orin_hwmon_rails(sysfs_root: Path) -> list[Rail]:
    """L4T 35+ (Orin): inK_label names channel K; inK_input (mV) x currK_input (mA) is its power."""
    rails = []
    for directory in _ina3221_hwmon_dirs(sysfs_root):
        for label_file in sorted(directory.glob("in*_label")):
            channel = label_file.name.removeprefix("in").removesuffix("_label")
            volts, amps = directory / f"in{channel}_input", directory / f"curr{channel}_input"
            if volts.is_file() and amps.is_file():
                read = lambda v=volts, a=amps: _read_number(v) * _read_number(a) / 1e6  # mV*mA = uW
                rails.append(Rail(label_file.read_text().strip(), directory, read))
    return rails


def find_ina3221_rails(sysfs_root: Path = Path("/")) -> list[Rail]:
    """Every INA3221 channel with a readable power, Nano layout and Orin layout together."""
    return _nano_iio_rails(sysfs_root) + _orin_hwmon_rails(sysfs_root)


def expected_input_rail(jetson_model: str | None) -> tuple[str, ...]:
    """The input-rail name(s) to look for, given /proc/device-tree/model (None: any known one)."""
    model = (jetson_model or "").replace("\x00", "").lower()
    if "orin" in model or "xavier nx" in model:
        return (ORIN_INPUT_RAIL,)
    if "nano" in model:
        return (NANO_INPUT_RAIL,)
    return INPUT_RAILS


def jetson_input_rail(sysfs_root: Path = Path("/"), jetson_model: str | None = None) -> Rail:
    """The board's input rail, or SourceUnavailable naming what was found instead."""
    rails = find_ina3221_rails(sysfs_root)
    if not rails:
        raise SourceUnavailable("no INA3221 power rails (ina3221x iio or ina3221 hwmon) in sysfs")
    wanted = expected_input_rail(jetson_model)
    for rail in rails:
        if rail.name.upper() in wanted:
            return rail
    found = ", ".join(rail.name for rail in rails)
    raise SourceUnavailable(
        f"INA3221 rails {found} include no input rail {'/'.join(wanted)}; the others are not summed"
    )


def open_jetson_meter(
    sysfs_root: Path = Path("/"), jetson_model: str | None = None, country_iso_code: str | None = None
) -> SampledPowerMeter:
    rail = jetson_input_rail(sysfs_root, jetson_model)
    rail.read_watts()  # fail here, not mid-window, when the file is unreadable
    return SampledPowerMeter(
        "jetson-ina3221",
        rail.read_watts,
        reason=f"module input ({rail.name})",
        country_iso_code=country_iso_code,
    )


# --------------------------------------------------------------------------------------------
# RAPL: /sys/class/powercap/intel-rapl:N package domains


@dataclass
class _RaplDomain:
    path: Path
    max_energy_uj: int
    last_uj: int = 0
    total_uj: int = 0

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())

    def reset(self) -> None:
        self.last_uj, self.total_uj = self.read_uj(), 0

    def advance(self) -> None:
        """Add the energy since the last read; a smaller value means the counter wrapped once."""
        now = self.read_uj()
        if now >= self.last_uj:
            self.total_uj += now - self.last_uj
        else:
            self.total_uj += self.max_energy_uj - self.last_uj + now
        self.last_uj = now


def find_rapl_packages(sysfs_root: Path = Path("/")) -> list[_RaplDomain]:
    """Readable package domains (not their core/uncore/dram subzones, not psys, not mmio twins)."""
    powercap = sysfs_root / "sys/class/powercap"
    if not powercap.is_dir():
        raise SourceUnavailable(f"no {powercap}")
    domains = []
    for zone in sorted(powercap.glob("intel-rapl:*")):
        if not re.fullmatch(r"intel-rapl:\d+", zone.name):
            continue
        try:
            if not (zone / "name").read_text().strip().startswith("package"):
                continue
            domain = _RaplDomain(zone, int((zone / "max_energy_range_uj").read_text().strip()))
            domain.read_uj()
        except PermissionError:
            raise SourceUnavailable(f"{zone / 'energy_uj'} is not readable (root only on most kernels)")
        except (OSError, ValueError) as error:
            raise SourceUnavailable(f"{zone} unreadable: {error}")
        domains.append(domain)
    if not domains:
        raise SourceUnavailable(f"no RAPL package domain under {powercap}")
    return domains


class RaplMeter:
    """Sum of the package energy counters over the window, polled at 10 Hz to count wraparounds."""

    source = "rapl"
    min_window_s = 0.1  # the counters update about every millisecond

    def __init__(self, domains: list[_RaplDomain], country_iso_code: str | None = None) -> None:
        self.domains = domains
        self._country = country_iso_code
        self._ticker: _Ticker | None = None
        self._reads = 0
        self._error: Exception | None = None

    def _poll(self) -> None:
        try:
            for domain in self.domains:
                domain.advance()
            self._reads += 1
        except (OSError, ValueError) as error:
            self._error = self._error or error

    def start(self) -> None:
        for domain in self.domains:
            domain.reset()
        self._reads, self._error = 1, None
        self._t0 = time.perf_counter()
        self._ticker = _Ticker(self._poll, 0.1)

    def stop(self) -> EnergyReading:
        if self._ticker is None:
            raise RuntimeError("rapl meter stopped before it was started")
        self._ticker.stop()
        self._ticker = None
        self._poll()
        seconds = time.perf_counter() - self._t0
        if self._error is not None:
            return EnergyReading(None, seconds, self.source, self._reads, f"RAPL read failed: {self._error}")
        joules = sum(domain.total_uj for domain in self.domains) / 1e6
        reason = "CPU package" + ("s" if len(self.domains) > 1 else "")
        co2 = co2_kg(joules, self._country)
        reading = EnergyReading(joules, seconds, self.source, self._reads, reason, co2)
        return _too_short(reading, self.min_window_s)

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None


# --------------------------------------------------------------------------------------------
# NVML (pynvml): the total-energy counter where the GPU has one, else sampled board power


def _nvml_handle(device_index: int | None) -> Any:
    """The NVML handle of the torch CUDA device, matched by UUID (CUDA and NVML orders can differ)."""
    import torch

    if not torch.cuda.is_available():
        raise SourceUnavailable("CUDA is not available")
    try:
        import pynvml
    except ImportError:
        raise SourceUnavailable("pynvml (nvidia-ml-py) is not installed")
    index = torch.cuda.current_device() if device_index is None else device_index
    uuid = str(torch.cuda.get_device_properties(index).uuid)
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        raise SourceUnavailable(f"NVML did not start: {error}")
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}")
    except pynvml.NVMLError as error:
        pynvml.nvmlShutdown()
        raise SourceUnavailable(f"NVML has no device with UUID {uuid}: {error}")


class NvmlCounterMeter:
    """Difference of nvmlDeviceGetTotalEnergyConsumption (mJ since the driver loaded)."""

    source = "nvml-counter"
    # The counter advances at the power sensor's rate (tens of ms on the GPUs Zeus documents);
    # a 1 s window keeps that step a few percent of the figure. Not verified on hardware here.
    min_window_s = 1.0

    def __init__(self, handle: Any, country_iso_code: str | None = None) -> None:
        import pynvml

        self._nvml = pynvml
        self._handle = handle
        self._country = country_iso_code
        self._start: tuple[float, int] | None = None

    def _read(self) -> tuple[float, int]:
        millijoules = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        return time.perf_counter(), millijoules

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise RuntimeError("nvml-counter meter stopped before it was started")
        (t0, mj0), (t1, mj1) = self._start, self._read()
        self._start = None
        joules = (mj1 - mj0) / 1e3
        reading = EnergyReading(joules, t1 - t0, self.source, 2, "GPU board", co2_kg(joules, self._country))
        return _too_short(reading, self.min_window_s)

    def close(self) -> None:
        self._nvml.nvmlShutdown()


def open_nvml_meter(device_index: int | None, country_iso_code: str | None = None) -> EnergyMeter:
    """The counter meter where the GPU supports it, else power sampled at 20 Hz."""
    import pynvml

    handle = _nvml_handle(device_index)
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return NvmlCounterMeter(handle, country_iso_code)
    except pynvml.NVMLError_NotSupported:
        pass
    try:
        pynvml.nvmlDeviceGetPowerUsage(handle)
    except pynvml.NVMLError as error:
        pynvml.nvmlShutdown()
        raise SourceUnavailable(f"GPU reports neither energy nor power: {error}")
    return SampledPowerMeter(
        "nvml-power",
        lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1e3,
        reason="GPU board",
        country_iso_code=country_iso_code,
        on_close=pynvml.nvmlShutdown,
    )


# --------------------------------------------------------------------------------------------
# CodeCarbon: the labelled estimate, and the CO2 figure beside every source


@contextlib.contextmanager
def _quiet_codecarbon_import():
    """CodeCarbon logs at INFO from import, and amdsmi prints to stdout when ROCm is absent."""
    user_level = os.environ.get("CODECARBON_LOG_LEVEL")
    if user_level is None:
        os.environ["CODECARBON_LOG_LEVEL"] = "error"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if user_level is None:
            os.environ.pop("CODECARBON_LOG_LEVEL", None)


def _codecarbon() -> Any:
    if "codecarbon" not in sys.modules:
        with _quiet_codecarbon_import():
            import codecarbon  # noqa: F401
            import codecarbon.core.emissions  # noqa: F401
    import codecarbon

    return codecarbon


@lru_cache(maxsize=None)
def _kg_co2_per_kwh(country_iso_code: str | None) -> float:
    """CodeCarbon's offline carbon intensity for a country (None: its world average, 475 g/kWh)."""
    _codecarbon()
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import GeoMetadata
    from codecarbon.input import DataSource

    emissions = Emissions(DataSource())
    where = GeoMetadata(country_iso_code=country_iso_code)
    return emissions.get_private_infra_emissions(Energy(kWh=1.0), where)


def co2_kg(joules: float | None, country_iso_code: str | None = None) -> float | None:
    """CO2-equivalent of ``joules`` at CodeCarbon's offline intensity for the country."""
    if joules is None:
        return None
    return joules / JOULES_PER_KWH * _kg_co2_per_kwh(country_iso_code)


def check_country(country_iso_code: str | None) -> str | None:
    """The code upper-cased, or UsageError when CodeCarbon's offline data does not know it."""
    if country_iso_code is None:
        return None
    _codecarbon()
    from codecarbon.input import DataSource

    code = country_iso_code.strip().upper()
    if code not in DataSource().get_global_energy_mix_data():
        raise UsageError(
            f"unknown country {country_iso_code!r}: "
            "give a 3-letter ISO code CodeCarbon knows (e.g. USA, FRA, DEU)"
        )
    return code


class CodeCarbonMeter:
    """CodeCarbon's OfflineEmissionsTracker, one task per window: no network, no files, quiet.

    Without RAPL, CodeCarbon models CPU power from CPU load and a TDP (its table, or 4 W per
    thread for a CPU it does not know) and RAM power from the RAM size (5 W per assumed DIMM).
    During a task it samples load once a second and integrates at the task's end, so a window
    needs ``min_samples`` of those seconds. A CPU cell counts CPU + RAM only; a GPU that
    CodeCarbon may see is left out. ``tracking_mode="machine"`` (the default, like RAPL and NVML)
    counts every process's CPU load; ``"process"`` counts this process's share.
    """

    source = "codecarbon-estimate"

    def __init__(
        self,
        *,
        country_iso_code: str | None = None,
        min_samples: int = 3,
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


# --------------------------------------------------------------------------------------------
# Choosing a source, and measuring a callable


def parse_device(device: str) -> tuple[str, int | None]:
    """'cpu' -> ('cpu', None); 'cuda' -> ('cuda', None); 'cuda:1' -> ('cuda', 1)."""
    match = re.fullmatch(r"\s*(cpu|cuda)(?::(\d+))?\s*", device)
    if match is None or (match[1] == "cpu" and match[2] is not None):
        raise UsageError(f"unknown device {device!r} for energy: use cpu, cuda or cuda:N")
    return match[1], None if match[2] is None else int(match[2])


def open_energy_meter(
    device: str,
    *,
    jetson_model: str | None = None,
    sysfs_root: Path = Path("/"),
    country_iso_code: str | None = None,
) -> EnergyMeter:
    """The best energy source for ``device`` on this machine.

    CUDA: NVML counter, NVML power, Jetson input rail (input rail first when ``jetson_model``
    says this is a Jetson). CPU: Jetson input rail, RAPL, CodeCarbon's estimate. When nothing
    fits a CUDA device the meter's readings are ``None`` with the reasons: a CPU+RAM estimate
    would leave the GPU out. The returned meter's ``skipped`` lists why better sources were passed.
    """
    kind, index = parse_device(device)
    country = check_country(country_iso_code)

    def jetson() -> EnergyMeter:
        return open_jetson_meter(sysfs_root, jetson_model, country)

    def nvml() -> EnergyMeter:
        return open_nvml_meter(index, country)

    def rapl() -> EnergyMeter:
        return RaplMeter(find_rapl_packages(sysfs_root), country)

    def codecarbon() -> EnergyMeter:
        return CodeCarbonMeter(country_iso_code=country)

    if kind == "cuda":
        choices = [("nvml", nvml), ("jetson-ina3221", jetson)]
        if jetson_model:  # on a Jetson the module input rail is the figure DESIGN asks for
            choices.reverse()
    else:
        choices = [("jetson-ina3221", jetson), ("rapl", rapl), ("codecarbon-estimate", codecarbon)]
    skipped: list[str] = []
    for name, open_source in choices:
        try:
            meter = open_source()
        except SourceUnavailable as why:
            skipped.append(f"{name}: {why}")
            continue
        meter.skipped = tuple(skipped)  # type: ignore[attr-defined]
        return meter
    meter = NoEnergyMeter("no power source for the GPU (" + "; ".join(skipped) + ")")
    meter.skipped = tuple(skipped)  # type: ignore[attr-defined]
    return meter


class EnergyWindow:
    """An open measuring window: work runs inside it, then ``extend`` tops it up to the source's minimum.

    Used as ``with EnergyWindow(meter) as window: ...`` so the energy of the timed rounds themselves is
    measured; ``window.reading`` holds the result once the block ends.
    """

    def __init__(self, meter: EnergyMeter) -> None:
        self.meter = meter
        self.reading: EnergyReading | None = None
        self._started = 0.0

    def __enter__(self) -> "EnergyWindow":
        self.meter.start()
        self._started = time.perf_counter()
        return self

    def extend(self, fn: Callable[[], object], min_window_s: float | None = None) -> int:
        """Call ``fn`` until the window is ``min_window_s`` long (default: the source's); returns the calls."""
        window = self.meter.min_window_s if min_window_s is None else min_window_s
        calls = 0
        while time.perf_counter() - self._started < window:
            fn()
            calls += 1
        return calls

    def __exit__(self, *exc_info: object) -> None:
        self.reading = _too_short(self.meter.stop(), self.meter.min_window_s)


def measure_energy(
    fn: Callable[[], object],
    meter: EnergyMeter,
    *,
    images_per_call: int,
    min_window_s: float | None = None,
) -> tuple[EnergyReading, int]:
    """Call ``fn`` repeatedly until the window reaches ``min_window_s`` (default: the source's).

    ``fn`` must return only when its device work is done (synchronize inside it on CUDA).
    Returns the reading and the number of calls: joules per image = joules / (calls *
    images_per_call). A window shorter than the source supports gives ``joules=None``.
    """
    check_images_per_call(images_per_call)
    if min_window_s is not None and min_window_s < 0:
        raise UsageError(f"min_window_s={min_window_s!r}: give seconds, 0 or more")
    with EnergyWindow(meter) as window:
        fn()
        calls = 1 + window.extend(fn, min_window_s)
    assert window.reading is not None
    return window.reading, calls


def check_images_per_call(images_per_call: object) -> None:
    if isinstance(images_per_call, bool) or not isinstance(images_per_call, int) or images_per_call < 1:
        raise UsageError(f"images_per_call={images_per_call!r}: give a whole number of images, 1 or more")


def energy_extra_info(reading: EnergyReading, calls: int, images_per_call: int) -> dict[str, Any]:
    """The DESIGN.md keys for a cell (plus ``energy_note`` and ``co2_kg_per_image``)."""
    images = calls * images_per_call
    per_image = None if reading.joules is None or images == 0 else reading.joules / images
    co2 = None if reading.co2_kg is None or images == 0 else reading.co2_kg / images
    return {
        "energy_j_per_image": per_image,
        "avg_power_w": reading.avg_power_w,
        "energy_source": reading.source,
        "energy_note": reading.reason,
        "co2_kg_per_image": co2,
    }

"""Energy over a measured window, from the best power source the machine has.

Sources, best first (docs/energy.md), one module each:

==================== ====================================================== ========================= ===============
source               what is read                                           library                   module
==================== ====================================================== ========================= ===============
``nvml-counter``     the GPU's total-energy counter (mJ), Volta and newer   pynvml (nvidia-ml-py)     nvml.py
``nvml-power``       GPU board power (mW) sampled at 20 Hz, integrated      pynvml                    nvml.py
``jetson-ina3221``   the module *input* rail (Nano ``POM_5V_IN``, Orin      hand-written sysfs reader jetson.py
                     ``VDD_IN``) sampled at 20 Hz, integrated
``rapl``             package energy counters under /sys/class/powercap      hand-written sysfs reader rapl.py
``codecarbon-        CodeCarbon's model: CPU load x TDP, plus RAM size      codecarbon                codecarbon.py
estimate``           (an estimate, never presented as a measurement)
==================== ====================================================== ========================= ===============

base.py holds what they share (the reading, the meter protocol, sampled power and its integral);
co2.py the CO2 figure beside every reading. This module chooses a source (``open_energy_meter``)
and measures a callable with it (``EnergyWindow``, ``measure_energy``).

A CUDA cell uses NVML (or, on a Jetson, the module input rail); a CPU cell uses the Jetson input
rail, RAPL or CodeCarbon. Energy from sampled power is the trapezoid integral over timestamped
samples, never an average of averages. Every source has a shortest window it can support
(``min_window_s``); a reading over a shorter window has ``joules=None`` and says why.
docs/energy.md says why the sysfs readers are hand-written rather than taken from Zeus.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from pytest_edgeprof.device import DeviceProfile
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.energy.base import (
    EnergyMeter,
    EnergyReading,
    NoEnergyMeter,
    SampledPowerMeter,
    SourceUnavailable,
    _too_short,
    trapezoid_joules,
)
from pytest_edgeprof.measure.energy.co2 import _codecarbon, check_country
from pytest_edgeprof.measure.energy.codecarbon import CodeCarbonMeter
from pytest_edgeprof.measure.energy.jetson import find_ina3221_rails, jetson_input_rail, open_jetson_meter
from pytest_edgeprof.measure.energy.nvml import open_nvml_meter
from pytest_edgeprof.measure.energy.rapl import RaplMeter, _RaplDomain, find_rapl_packages
from pytest_edgeprof.measurement import Energy

# Imported here for the modules, tests and benchmarks that import them from this package.
__all__ = [
    "CodeCarbonMeter",
    "EnergyMeter",
    "EnergyReading",
    "EnergyWindow",
    "NoEnergyMeter",
    "RaplMeter",
    "SampledPowerMeter",
    "SourceUnavailable",
    "_RaplDomain",
    "_codecarbon",
    "check_country",
    "energy_per_image",
    "open_meter",
    "find_ina3221_rails",
    "find_rapl_packages",
    "jetson_input_rail",
    "measure_energy",
    "open_energy_meter",
    "parse_device",
    "trapezoid_joules",
]


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
        if jetson_model:  # on a Jetson the module input rail is the figure docs/energy.md defines
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
        meter.skipped = tuple(skipped)  # type: ignore[attr-defined]  # a note beside the EnergyMeter protocol
        return meter
    meter = NoEnergyMeter("no power source for the GPU (" + "; ".join(skipped) + ")")
    meter.skipped = tuple(skipped)  # type: ignore[attr-defined]  # a note beside the EnergyMeter protocol
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

    def __enter__(self) -> EnergyWindow:
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


def energy_per_image(reading: EnergyReading, images: int) -> Energy:
    """The window's energy divided by the images it processed (and CodeCarbon's CO2 likewise)."""
    per_image = None if reading.joules is None or images == 0 else reading.joules / images
    co2 = None if reading.co2_kg is None or images == 0 else reading.co2_kg / images
    return Energy(per_image, reading.avg_power_w, reading.source, reading.reason, co2)


def open_meter(profile: DeviceProfile, no_energy: bool = False) -> EnergyMeter:
    """The best energy source for a device profile, or none when ``no_energy`` (``--no-energy``)."""
    if no_energy:
        return NoEnergyMeter("not measured (--no-energy)")
    return open_energy_meter(profile.torch_device, jetson_model=profile.jetson_model)

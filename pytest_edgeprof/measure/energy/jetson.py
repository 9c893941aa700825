"""Jetson: the module input rail of the INA3221 power monitor, sampled at 20 Hz and integrated.

Only the input rail is read (Nano ``POM_5V_IN``, Orin ``VDD_IN``); every other rail is a part of
it, so they are never summed. Two sysfs layouts:

- L4T 32 (Nano): ``/sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_N`` names channel N,
  ``in_powerN_input`` is its power in mW.
- L4T 35+ (Orin): hwmon devices whose ``name`` is ``ina3221`` (under ``/sys/class/hwmon`` or
  ``/sys/bus/i2c/drivers/ina3221/*/hwmon``); ``inN_label`` names channel N, ``inN_input`` (mV) x
  ``currN_input`` (mA) is its power.

Not verified on hardware (no Jetson was available): the layouts follow Zeus's reader and NVIDIA's L4T
docs, and are tested on fake sysfs trees. The rails measure the module's input, not the carrier board.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pytest_edgeprof.measure.energy.base import SampledPowerMeter, SourceUnavailable

# The board's input rail; every other INA3221 rail is a part of it, so a sum counts twice.
NANO_INPUT_RAIL = "POM_5V_IN"
ORIN_INPUT_RAIL = "VDD_IN"
INPUT_RAILS = (NANO_INPUT_RAIL, ORIN_INPUT_RAIL)


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: its label and how to read its power in watts."""

    name: str
    path: Path  # the directory holding the channel's files
    read_watts: Callable[[], float]


def _read_number(path: Path) -> float:
    return float(path.read_text().strip())


def _read_milliwatts(path: Path) -> float:
    """A power file in mW, read as watts."""
    return _read_number(path) / 1e3


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
                    Rail(name_file.read_text().strip(), device, partial(_read_milliwatts, power_file))
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
                def read(v: Path = volts, a: Path = amps) -> float:
                    return _read_number(v) * _read_number(a) / 1e6  # mV*mA = uW

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

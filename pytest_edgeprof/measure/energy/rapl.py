"""RAPL: the CPU package energy counters under /sys/class/powercap.

Reads ``/sys/class/powercap/intel-rapl:N/energy_uj`` (µJ) of the ``package-*`` domains only: not
their core/uncore/dram subzones, not ``psys``, not the ``intel-rapl-mmio`` twins. The counters are
polled at 10 Hz during the window so that a wrap is seen and ``max_energy_range_uj`` added for it.
``energy_uj`` is readable by root only on most kernels.

Not verified on hardware (the development VM exposes no powercap): tested on fake sysfs trees.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_edgeprof.measure.energy.base import EnergyReading, SourceUnavailable, _Ticker, _too_short
from pytest_edgeprof.measure.energy.co2 import co2_kg


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
            raise SourceUnavailable(f"{zone / 'energy_uj'} is not readable (root only on most kernels)") from None
        except (OSError, ValueError) as error:
            raise SourceUnavailable(f"{zone} unreadable: {error}") from None
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

"""The device's achievable peak per precision (``measure/peak.py``), and each cell's efficiency against it.

Registered whenever cells are timed (not under ``--benchmark-disable``, where no cell has a latency to
set against a peak). The peak at a precision is probed before the first cell of that precision is warmed
up, never during its rounds (then read from the per-machine cache); the saved run's machine info gets
the peaks probed as ``edgeprof.peak``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgeprof.axes import PRECISIONS
from pytest_edgeprof.measurement import Efficiency
from pytest_edgeprof.plugin.extension import CellFeature

if TYPE_CHECKING:
    from pytest_edgeprof.measure.peak import DevicePeak
    from pytest_edgeprof.measurement import Cell, CellKey, Measurement
    from pytest_edgeprof.plugin.session import EdgeprofSession


class PeakPlugin(CellFeature):
    def __init__(self, session: EdgeprofSession) -> None:
        self._session = session
        self.peaks: dict[str, DevicePeak] = {}  # precision -> the peak probed this run

    def before_cell(self, cell: Cell) -> None:
        """Probe the peak at the cell's precision once; int8 has none (the GEMM probe does not measure it)."""
        from pytest_edgeprof.measure.peak import probe_peak

        key = PRECISIONS[cell.precision].peak_key
        if key is not None and cell.precision not in self.peaks:
            self.peaks[cell.precision] = probe_peak(self._session.profile.torch_device, key)

    def after_cell(self, measurement: Measurement, key: CellKey) -> None:
        """The cell's FLOP rate at its median latency, and that rate over the peak where one was probed."""
        peak = self.peaks.get(measurement.cell.precision)
        measurement.efficiency = Efficiency.of(measurement.cost, measurement.latency,
                                               peak.flops_per_s if peak else None)

    @pytest.hookimpl(trylast=True, optionalhook=True)
    def pytest_benchmark_update_machine_info(self, config: pytest.Config, machine_info: dict[str, Any]) -> None:
        """After the core's ``edgeprof`` machine info: the peaks this run probed, if any."""
        if self.peaks and "edgeprof" in machine_info:
            machine_info["edgeprof"]["peak"] = {precision: asdict(peak) for precision, peak in self.peaks.items()}

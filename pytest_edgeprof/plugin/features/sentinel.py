"""The sentinel between cells (``measure/sentinel.py``), and each cell's repeat interval widened by the drift it saw.

Registered whenever cells are timed (not under ``--benchmark-disable``). A reading before each measured cell and
one after; after a cell, the spread of every reading the session took so far (``latency_stats.session_drift``)
is saved as the cell's ``latency_drift`` and added to its ``latency_ms_repeat95`` (``Latency.with_drift``),
so the interval says where the next run's median is expected, not only where this run's rounds lay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_edgeprof.latency_stats import session_drift
from pytest_edgeprof.plugin.extension import CellFeature

if TYPE_CHECKING:
    from pytest_edgeprof.measurement import Cell, Measurement
    from pytest_edgeprof.plugin.session import EdgeprofSession


class SentinelPlugin(CellFeature):
    def __init__(self, session: EdgeprofSession) -> None:
        self._session = session
        self._call: Callable[[], object] | None = None  # made on the first cell, on the run's device
        self.readings_s: list[float] = []  # every reading this session, in order

    def _read(self) -> None:
        from pytest_edgeprof.measure.sentinel import read_sentinel, sentinel_call

        device = self._session.profile.torch_device
        if self._call is None:
            self._call = sentinel_call(device)
            read_sentinel(self._call, device)  # the first reading pays for the threads and caches: not kept
        self.readings_s.append(read_sentinel(self._call, device))

    def before_cell(self, cell: Cell) -> None:
        self._read()

    def after_cell(self, measurement: Measurement) -> None:
        """A reading after the cell; the session's drift so far into the cell's latency, if it was timed."""
        if measurement.latency is None:
            return
        self._read()
        drift = session_drift(self.readings_s)
        if drift is not None:
            measurement.latency = measurement.latency.with_drift(drift)

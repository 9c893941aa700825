"""``--cooldown``: a pause, or a wait for a temperature, before every measured cell but the first.

Registered only when ``--cooldown`` (or ``edgeprof_cooldown``) is set; the wait itself is
``measure/cooldown.py``'s. What the wait was is saved in the cell's ``device_state["cooldown"]``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from pytest_edgeprof.plugin.extension import CellFeature

if TYPE_CHECKING:
    from pytest_edgeprof.measure.cooldown import Cooldown
    from pytest_edgeprof.measurement import Cell, CellKey, Measurement


class CooldownPlugin(CellFeature):
    def __init__(self, cooldown: Cooldown) -> None:
        self.cooldown = cooldown
        self.cells_measured = 0
        self._record: dict[str, Any] | None = None  # the wait before the cell being measured; None before the first
        self._no_temperature_warned = False

    def before_cell(self, cell: Cell) -> None:
        from pytest_edgeprof.measure.cooldown import cool_down

        self.cells_measured += 1
        self._record = None if self.cells_measured == 1 else cool_down(self.cooldown)
        if self._record is not None and "hottest_c" in self._record and self._record["hottest_c"] is None:
            self._warn_no_temperature(self._record["until_c"])

    def after_cell(self, measurement: Measurement, key: CellKey) -> None:
        if self._record is not None:
            measurement.device_state = {**(measurement.device_state or {}), "cooldown": self._record}

    def _warn_no_temperature(self, until_c: float) -> None:
        """A temperature wait where none is readable is skipped, with one warning a run."""
        if self._no_temperature_warned:
            return
        self._no_temperature_warned = True
        from pytest_edgeprof.measure.cooldown import CooldownWarning

        warnings.warn(CooldownWarning(
            f"--cooldown until={until_c:g}C: no thermal zone is readable here (/sys/class/thermal), "
            "so cells do not wait; give seconds instead, e.g. --cooldown 30"), stacklevel=1)

"""``--emulate PROFILE``: each cell's figures also predicted on a target device (``measure/emulation.py``).

Registered only when ``--emulate`` (or ``edgeprof_emulate``) is set. The target is resolved at session
start (``host`` probes this machine's peaks then, before anything is timed); the cell key gains an
``emulate`` condition, so ``--resume`` never replays a cell measured without the prediction; budgets,
failure lines and an isolated child's memory follow the target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.plugin.extension import CellFeature

if TYPE_CHECKING:
    from pytest_edgeprof.device import DeviceProfile
    from pytest_edgeprof.measure.emulation import Target
    from pytest_edgeprof.measurement import Measurement
    from pytest_edgeprof.plugin.session import EdgeprofSession


class EmulationPlugin(CellFeature):
    def __init__(self, name: str, session: EdgeprofSession) -> None:
        self.name = name  # the profile --emulate names
        self._session = session
        self._target: Target | None = None

    @property
    def target(self) -> Target:
        """The target, resolved on first use (``host``: this machine's peaks probed, then cached, at each
        ``--precision`` the probe measures). A precision the target has no figures for is a UsageError here,
        at session start, not when its first cell comes up."""
        if self._target is None:
            from pytest_edgeprof.measure.emulation import resolve_target

            precisions = self._session.settings.precisions or ("fp32",)
            target = resolve_target(self.name, self._session.profile, precisions,
                                    power_mode=self._session.settings.power_mode)
            for precision in precisions:
                target.require(precision)
            self._target = target
        return self._target

    @pytest.hookimpl(trylast=True)  # after the core has resolved the device and the grid the user asked for
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """The host's peaks are probed now, before anything is timed; an unknown target is a usage error."""
        try:
            self.target  # noqa: B018 - resolves the target once
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None

    def key_conditions(self) -> dict[str, str]:
        return {"emulate": self.name}

    def where(self, device: DeviceProfile) -> str:
        return f"{self.name} (emulated on {device.name})"

    def device_note(self) -> str:
        """What the device line adds: the figures are predicted."""
        return f"; emulating {self.name}: its figures are predicted (target_ keys), not measured"

    def predict_only(self, measurement: Measurement) -> None:
        """A cell this host cannot run (TensorRT on a PC): the board's predicted figures, labelled, and no host figure."""
        from pytest_edgeprof.measure.emulation import predict_unrunnable

        prediction = predict_unrunnable(measurement.cell, self.target)
        if prediction is not None and prediction.latency_ms is not None:
            measurement.prediction = prediction
            measurement.error += f"; not run here: its {self.name} figures are predicted only (target_ keys)"

    def memory_capacity_bytes(self) -> int:
        """The memory a program can use on the target: the default memory budget."""
        return self.target.usable_memory_bytes

    def isolate_memory_limit(self, device: DeviceProfile) -> int | None:
        """On a CPU, the target's usable memory less its runtime overhead (the host holds no CUDA context), so a
        cell that would run out of memory on the target runs out in its isolated child; elsewhere no limit."""
        if device.torch_device != "cpu":
            return None
        return self.target.usable_memory_bytes - self.target.runtime_overhead_bytes

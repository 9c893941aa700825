"""What the session core asks of the feature plugins (``plugin/features/``).

The core defines these types and the features implement them, so the core never imports a feature:
a feature is registered (``plugin/features/__init__.py``) only when its option is set, and the core
and the ``edgeprof`` fixture reach whichever are registered through ``Features`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import nn

    from pytest_edgeprof.device import DeviceProfile
    from pytest_edgeprof.measure.emulation import Target
    from pytest_edgeprof.measurement import Cell, CellKey, Measurement
    from pytest_edgeprof.runs.journal import JournalEntry


class CellFeature:
    """A feature's part in each measured cell; every method does nothing unless a feature overrides it.
    A feature is a pytest plugin as well: its other hooks are pytest's own."""

    def key_conditions(self) -> dict[str, str]:
        """Run conditions it adds to every cell's key (only while it is on, so other runs' keys stay as they were)."""
        return {}

    def before_cell(self, cell: Cell) -> None:
        """Just before a cell is measured (a replayed cell is not): probe the device, wait for it to cool."""

    def after_cell(self, measurement: Measurement, key: CellKey) -> None:
        """The cell under ``key`` was measured (or failed): add what the feature knows to its record."""


class Emulating(Protocol):
    """``--emulate`` as the core sees it (``features/emulation.py``): whose figures a cell also predicts."""

    @property
    def target(self) -> Target: ...

    def where(self, device: DeviceProfile) -> str: ...

    def device_note(self) -> str: ...

    def memory_capacity_bytes(self) -> int: ...

    def predict_only(self, measurement: Measurement) -> None: ...

    def isolate_memory_limit(self, device: DeviceProfile) -> int | None: ...


class Replaying(Protocol):
    """``--resume`` as the core sees it (``features/resume.py``): what the old journal holds for a cell."""

    def replay(self, key: CellKey) -> JournalEntry | None: ...


class Remote(Protocol):
    """``--device ssh://...`` as the core sees it (``features/remote.py``): the board is the device, it says
    which deployments it lacks, and it measures each cell."""

    def profile(self) -> DeviceProfile: ...

    def unsupported(self, precision: str, runtime: str) -> str | None: ...

    def measure(self, module: nn.Module, cell: Cell, identity: dict[str, str]) -> Measurement: ...


@dataclass
class Features:
    """The feature plugins this run registered, in the order their ``before_cell`` runs."""

    cell_features: list[CellFeature] = field(default_factory=list)
    emulation: Emulating | None = None
    resume: Replaying | None = None
    remote: Remote | None = None

    def add(self, feature: CellFeature) -> None:
        self.cell_features.append(feature)

    @property
    def target(self) -> Target | None:
        """The emulated target, None without ``--emulate``."""
        return self.emulation.target if self.emulation is not None else None

    def replay(self, key: CellKey) -> JournalEntry | None:
        """The old journal's entry to replay for a cell of this key instead of measuring it (asked before
        ``before_cell``); None without ``--resume``, or where the cell is to be measured."""
        return self.resume.replay(key) if self.resume is not None else None

    def key_conditions(self) -> dict[str, str]:
        conditions: dict[str, str] = {}
        for feature in self.cell_features:
            conditions.update(feature.key_conditions())
        return conditions

    def before_cell(self, cell: Cell) -> None:
        for feature in self.cell_features:
            feature.before_cell(cell)

    def after_cell(self, measurement: Measurement, key: CellKey) -> None:
        for feature in self.cell_features:
            feature.after_cell(measurement, key)

"""Session state: the settings a run was started with, the resolved device, the current model,
the energy source, and what the run has learnt so far (out-of-memory batches, broken budgets)."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from .budgets import Budget, format_bytes
from .device import DeviceProfile, resolve_device
from .energy import EnergyMeter, open_energy_meter
from .grid import Grid, default_grid
from .measurement import Cell, Measurement
from .timing import warm_up
from .zoo import build_model, example_input, reference_input_shape


@dataclass(frozen=True)
class Settings:
    """What the user asked for, parsed and validated (command line over ini over defaults)."""

    device: str = "auto"
    grid: str = "default"
    models: tuple[str, ...] | None = None  # None: the grid's default
    batch_sizes: tuple[int, ...] | None = None
    shapes: tuple[tuple[int, int, int], ...] | None = None
    weights: str | None = None  # None: random initialisation
    budget_layers: tuple[dict[str, Budget], ...] = ()  # ini, then command line; later layers win


@dataclass
class EdgeprofSession:
    settings: Settings
    _profile: DeviceProfile | None = None
    _model_key: tuple[str, str | None] | None = None
    _model: nn.Module | None = None
    _energy_meter: EnergyMeter | None = None
    out_of_memory: dict[tuple[str, str, tuple[int, int, int]], int] = field(default_factory=dict)
    broken_budgets: list[tuple[str, list[str]]] = field(default_factory=list)  # (cell id, lines)

    @property
    def profile(self) -> DeviceProfile:
        if self._profile is None:
            self._profile = resolve_device(self.settings.device)
        return self._profile

    def grid(self) -> Grid:
        base = default_grid(self.profile, self.settings.grid)
        return replace(
            base,
            models=self.settings.models or base.models,
            batch_sizes=self.settings.batch_sizes or base.batch_sizes,
            shapes=self.settings.shapes or base.shapes,
        )

    def device_budgets(self) -> dict[str, Budget]:
        """The device's own limit: its memory capacity is the default memory budget."""
        capacity = self.profile.memory_bytes
        return {"memory": Budget("memory", float(capacity), format_bytes(capacity, like="GiB").replace(" ", ""))}

    def model(self, name: str) -> nn.Module:
        """The named model on the session's device, built and warmed once per session and weights.

        Only the current model is kept: the grid is model-major, and a model left on the device would
        count against the next model's memory (and may not fit beside it on a small board).
        """
        key = (name, self.settings.weights)
        if key != self._model_key:
            self._release_model()
            device = self.profile.torch_device
            model = build_model(name, self.settings.weights, device)
            sample = example_input(1, reference_input_shape(name), device)
            with torch.inference_mode():
                warm_up(lambda: model(sample), device)
            self._model_key, self._model = key, model
        assert self._model is not None
        return self._model

    def _release_model(self) -> None:
        self._model_key = self._model = None
        gc.collect()
        if self._profile is not None and self._profile.is_cuda:
            torch.cuda.empty_cache()

    def energy_meter(self) -> EnergyMeter:
        """The best energy source for the device, opened once per session."""
        if self._energy_meter is None:
            profile = self.profile
            self._energy_meter = open_energy_meter(profile.torch_device, jetson_model=profile.jetson_model)
        return self._energy_meter

    def close(self) -> None:
        if self._energy_meter is not None:
            self._energy_meter.close()
        self._release_model()

    def record_out_of_memory(self, cell: Cell) -> None:
        key = (cell.model, cell.variant, cell.input_shape)
        self.out_of_memory[key] = min(cell.batch_size, self.out_of_memory.get(key, cell.batch_size))

    def capacity_skip_reason(self, cell: Cell) -> str | None:
        """Why a cell need not run: a smaller batch of the same model, variant and shape ran out of memory."""
        failed = self.out_of_memory.get((cell.model, cell.variant, cell.input_shape))
        if failed is not None and cell.batch_size > failed:
            return f"exceeds capacity (b={failed} ran out of memory)"
        return None

    def record_broken(self, measurement: Measurement, lines: list[str]) -> None:
        self.broken_budgets.append((measurement.cell.id, lines))

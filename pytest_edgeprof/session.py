"""Session state: the settings a run was started with, the resolved device, and the model cache."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from .device import DeviceProfile, resolve_device
from .grid import Grid, default_grid
from .timing import WarmUp, warm_up
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


@dataclass
class EdgeprofSession:
    settings: Settings
    _profile: DeviceProfile | None = None
    _models: dict[tuple[str, str | None], nn.Module] = field(default_factory=dict)
    warmups: dict[tuple[str, str | None], WarmUp] = field(default_factory=dict)

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

    def model(self, name: str) -> nn.Module:
        """The named model on the session's device, built and warmed once per session and weights."""
        key = (name, self.settings.weights)
        if key not in self._models:
            device = self.profile.torch_device
            model = build_model(name, self.settings.weights, device)
            sample = example_input(1, reference_input_shape(name), device)
            with torch.inference_mode():
                self.warmups[key] = warm_up(lambda: model(sample), device)
            self._models[key] = model
        return self._models[key]

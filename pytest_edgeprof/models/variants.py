"""A model variant by reference ("resnet50", "p50", weights ...) and building it where it runs.

The grid's variant axis: ``base`` is the torchvision model, ``pNN`` the model with NN % of its FLOPs
removed by structured pruning (``prune/``), read from the variant cache when it is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from pytest_edgeprof.measurement import Pruning
from pytest_edgeprof.models.identity import model_identity
from pytest_edgeprof.models.prune import pruned_model, variant_target
from pytest_edgeprof.models.zoo import build_model, reference_input_shape

TAYLOR_IMAGES = 256  # images of --prune-data that Taylor importance sees


@dataclass(frozen=True)
class ModelRef:
    """A model by name, to be built where it runs (in this process, or in an isolated child)."""

    name: str
    weights: str | None = None
    variant: str = "base"
    prune_method: str = "magnitude"
    prune_cache: Path | None = None  # None: $XDG_CACHE_HOME/pytest-edgeprof/variants
    prune_data: Path | None = None  # an ImageFolder for Taylor importance

    def identity(self) -> dict[str, str]:
        """Which network this builds (the model part of the cell key; the variant cache starts from it too)."""
        if self.variant == "base":
            return model_identity(self.name, self.weights)
        data = str(self.prune_data.resolve()) if self.prune_method == "taylor" and self.prune_data else ""
        return model_identity(self.name, self.weights, self.variant, self.prune_method, data)

    def build(self, device: str = "cpu", progress: bool = False) -> BuiltModel:
        """The model in eval mode on ``device``; a pruned variant is pruned once and cached, then loaded."""
        target = variant_target(self.variant)
        if target is None:
            return BuiltModel(build_model(self.name, self.weights, device))
        example_data, data_key = _taylor_data(self)
        result = pruned_model(
            self.name, target, weights=self.weights, method=self.prune_method, cache_dir=self.prune_cache,
            progress=progress, example_data=example_data, data_key=data_key,
        )
        return BuiltModel(result.model.eval().to(device), result.pruning())


@dataclass
class BuiltModel:
    model: nn.Module
    pruning: Pruning | None = None  # what a pruned variant really is


def _taylor_data(ref: ModelRef) -> tuple[Any, str]:
    if ref.prune_method != "taylor" or ref.prune_data is None:
        return None, ""
    from pytest_edgeprof.models.accuracy import image_folder_loader

    loader, eval_set = image_folder_loader(ref.prune_data, ref.name, reference_input_shape(ref.name), limit=TAYLOR_IMAGES,
                                           option="--prune-data")
    return loader, f"{ref.prune_data.resolve()}:{eval_set}"

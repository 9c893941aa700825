"""The benchmark grid: which models, batch sizes and input shapes, and the defaults per device.

Importing it imports no torch: the plugin parses its options with these functions in every pytest
run. Model names are checked against torchvision's registry only by :func:`resolve_models`, when
the grid is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_edgeprof.axes import DEFAULT_PRECISION, DEFAULT_RUNTIME, PRECISIONS, RUNTIMES
from pytest_edgeprof.device import DeviceProfile
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.shared_options import parse_batch_size, parse_shape

STUDY_MODELS = ("vgg16", "resnet50", "mobilenet_v3_large")


@dataclass(frozen=True)
class Grid:
    models: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    shapes: tuple[tuple[int, int, int], ...]

    precisions: tuple[str, ...] = (DEFAULT_PRECISION,)
    runtimes: tuple[str, ...] = (DEFAULT_RUNTIME,)

    def cells(self, variants: tuple[str, ...] = ("base",)) -> list[Cell]:
        """Model-major, then one configuration after another (so each is built once), batch sizes
        ascending, so a configuration's larger batches follow its smaller ones."""
        return [
            Cell(model, variant, batch, shape, precision, runtime)
            for model in self.models
            for variant in variants
            for precision in self.precisions
            for runtime in self.runtimes
            for shape in self.shapes
            for batch in self.batch_sizes
        ]


# The study's full grid (--grid study): what the Jetson Nano / RTX 3070 study swept.
STUDY_GRID = Grid(STUDY_MODELS, (1, 8, 16, 32, 64, 128), tuple((3, s, s) for s in (224, 192, 160, 112)))
# Sized so `pytest benchmarks/` on a 2-core CPU finishes within 10 minutes.
CPU_GRID = Grid(STUDY_MODELS, (1, 4), ((3, 224, 224), (3, 160, 160)))
CUDA_GRID = Grid(STUDY_MODELS, (1, 8, 32), ((3, 224, 224), (3, 160, 160)))
JETSON_GRID = Grid(STUDY_MODELS, (1, 4, 16), ((3, 224, 224), (3, 160, 160)))
GRID_NAMES = ("default", "study")


def default_grid(profile: DeviceProfile, name: str = "default") -> Grid:
    if name == "study":
        return STUDY_GRID
    if name != "default":
        raise UsageError(f"unknown --grid {name!r}; accepted: {', '.join(GRID_NAMES)}")
    if profile.jetson_model:
        return JETSON_GRID
    return CUDA_GRID if profile.is_cuda else CPU_GRID


# Repeats (resnet18,RESNET18 or 1,01) are dropped, as --prune drops them: a cell measured twice
# would be saved twice under one id.


def parse_models(text: str) -> tuple[str, ...]:
    return resolve_models(split_models(text))


def split_models(text: str) -> tuple[str, ...]:
    """``--models`` as written, its names not yet checked (that needs torchvision): see resolve_models."""
    return tuple(_split(text, "--models", "a comma list of torchvision model names"))


def resolve_models(names: tuple[str, ...]) -> tuple[str, ...]:
    """Each name as torchvision spells it (``UsageError`` naming the closest for an unknown one)."""
    from pytest_edgeprof.models.zoo import resolve_model_name

    return tuple(dict.fromkeys(resolve_model_name(name) for name in names))


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    items = _split(text, "--batch-sizes", "a comma list of positive integers")
    return tuple(dict.fromkeys(parse_batch_size(item) for item in items))


def parse_shapes(text: str) -> tuple[tuple[int, int, int], ...]:
    items = _split(text, "--shapes", "a comma list such as 224,160 or 224x160")
    return tuple(dict.fromkeys(parse_shape(item) for item in items))


def parse_precisions(text: str) -> tuple[str, ...]:
    return _choices(text, "--precision", tuple(PRECISIONS))


def parse_runtimes(text: str) -> tuple[str, ...]:
    return _choices(text, "--runtime", tuple(RUNTIMES))


def _choices(text: str, option: str, accepted: tuple[str, ...]) -> tuple[str, ...]:
    items = [item.lower() for item in _split(text, option, f"a comma list from {', '.join(accepted)}")]
    unknown = [item for item in items if item not in accepted]
    if unknown:
        raise UsageError(f"{option} {text!r}: unknown {unknown[0]!r}; accepted: {', '.join(accepted)}")
    return tuple(dict.fromkeys(items))


def _split(text: str, option: str, accepted: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise UsageError(f"{option} {text!r}: empty item; expected {accepted}")
    return items

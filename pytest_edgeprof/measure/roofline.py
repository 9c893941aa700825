"""A per-layer roofline: how long one forward pass takes on a device known only by its figures.

Every kernel of one eval-mode forward pass is seen on meta tensors (nothing runs for real,
``compat/torch_dispatch.py``): its FLOPs, from torch's FLOP formulas as ``measure/flops.py`` counts
them (FLOPs = 2 x MACs), and the elements it reads and writes (its input and output tensors, weights
included), which at a precision's bytes per element are the bytes it moves. On a device with peak
P FLOP/s and bandwidth B a kernel takes at least max(FLOPs / P, bytes / B). How far a kind of layer
falls short of that bound is its efficiency (fitted per device, as nn-Meter fits its kernel
predictors per device), and each kernel costs a fixed launch on top. An eager forward runs its
kernels one after another, so the forward's time is their sum.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import flop_registry

from pytest_edgeprof.axes import PRECISIONS
from pytest_edgeprof.compat.torch_dispatch import OpRecorder, is_view
from pytest_edgeprof.measure.flops import check_batch_size, check_input_shape, input_dtype, meta_copy

# Layer kinds whose efficiencies are fitted apart: dense convolutions, depthwise and grouped ones,
# matrix products (linear layers), pooling, and everything else (normalisation, activations, additions,
# concatenation), whose cost is the bytes it moves.
KINDS = ("conv", "depthwise", "linear", "pool", "elementwise")
_LINEAR_OPS = {"mm", "addmm", "bmm", "baddbmm"}
_POOL_OPS = {"max_pool2d_with_indices", "avg_pool2d", "_adaptive_avg_pool2d", "adaptive_max_pool2d", "mean",
             "max_pool2d", "_adaptive_avg_pool2d_backward"}


@dataclass(frozen=True)
class Kernel:
    """One kernel of a forward pass."""

    op: str  # the aten op, "convolution"
    kind: str  # one of KINDS
    layer: str  # the innermost module whose forward ran it ("features.0"); "" for the model's own code
    flops: int
    elements: int  # of the tensors it reads and writes

    def bytes(self, precision: str) -> int:
        return self.elements * PRECISIONS[precision].bytes_per_element


def kernels(model: nn.Module, input_shape: tuple[int, int, int], batch_size: int = 1) -> tuple[Kernel, ...]:
    """The kernels of one eval-mode forward of ``batch_size`` inputs of ``input_shape``, in order,
    seen on a meta copy of ``model`` (which is neither run, moved nor changed)."""
    shape, batch = check_input_shape(input_shape), check_batch_size(batch_size)
    meta_model = meta_copy(model).eval()
    x = torch.empty((batch, *shape), dtype=input_dtype(model), device="meta")
    found: list[Kernel] = []
    layers: list[str] = [""]

    def seen(op: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if is_view(op) or not any(True for _ in _tensors((args, kwargs))):  # a view, or a factory (empty)
            return
        packet = op._overloadpacket
        flops = flop_registry[packet](*args, **kwargs, out_val=out) if packet in flop_registry else 0
        elements = sum(t.numel() for t in _tensors((args, kwargs, out)))
        found.append(Kernel(packet.__name__, _kind(packet.__name__, args), layers[-1], int(flops), elements))

    with _innermost_layer(meta_model, layers), OpRecorder(seen), torch.no_grad():
        meta_model(x)
    return tuple(found)


def _kind(op: str, args: tuple[Any, ...]) -> str:
    if op == "convolution":
        groups = args[8] if len(args) > 8 else 1
        return "depthwise" if groups > 1 else "conv"
    if op in _LINEAR_OPS:
        return "linear"
    return "pool" if op in _POOL_OPS else "elementwise"


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


@contextmanager
def _innermost_layer(model: nn.Module, stack: list[str]) -> Iterator[None]:
    """Keeps ``stack[-1]`` the name of the module whose forward is running."""
    names = {id(module): name for name, module in model.named_modules()}

    def enter(module: nn.Module, args: Any) -> None:
        stack.append(names[id(module)])

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()

    handles = [h for m in model.modules() for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# --- the time --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RooflineEfficiency:
    """How far a device falls short of its roofline: per kind, the fraction of the bound it reaches
    (1.0: the bound itself), and the fixed cost of one kernel."""

    per_kind: Mapping[str, float]
    launch_s: float
    basis: str  # where the factors come from: "bound" (none fitted), or the fit's models and machine


def bounds_s(found: Sequence[Kernel], precision: str, flops_per_s: float, bytes_per_s: float) -> dict[str, float]:
    """Per kind, the sum over its kernels of max(FLOPs / peak, bytes / bandwidth), in seconds."""
    by_kind = dict.fromkeys(KINDS, 0.0)
    for kernel in found:
        by_kind[kernel.kind] += max(kernel.flops / flops_per_s, kernel.bytes(precision) / bytes_per_s)
    return by_kind


@dataclass(frozen=True)
class RooflineTime:
    """A forward's predicted time and the part of it the device is busy computing or moving data."""

    total_s: float
    busy_s: float  # without the launches
    kernels: int


def predict(found: Sequence[Kernel], precision: str, flops_per_s: float, bytes_per_s: float,
            efficiency: RooflineEfficiency) -> RooflineTime:
    """The forward's time: each kind's bound over its efficiency, plus one launch per kernel."""
    bounds = bounds_s(found, precision, flops_per_s, bytes_per_s)
    busy = sum(seconds / efficiency.per_kind[kind] for kind, seconds in bounds.items())
    return RooflineTime(busy + efficiency.launch_s * len(found), busy, len(found))


@dataclass(frozen=True)
class Observation:
    """One measured forward for fitting: its bounds per kind, its number of kernels, its measured time."""

    bounds_s: Mapping[str, float]
    kernels: int
    measured_s: float


def fit(observations: Sequence[Observation], basis: str) -> RooflineEfficiency:
    """Per-kind efficiencies and the launch cost that minimise the squared relative error of the
    predicted times (non-negative least squares; a kind no observation has, or to which the fit gives no
    weight of its own, keeps efficiency 1.0: its bound)."""
    import numpy as np
    from scipy.optimize import nnls

    present = [kind for kind in KINDS if any(o.bounds_s.get(kind, 0.0) > 0 for o in observations)]
    rows = np.array([[o.bounds_s.get(kind, 0.0) / o.measured_s for kind in present] + [o.kernels / o.measured_s]
                     for o in observations])
    weights, _ = nnls(rows, np.ones(len(observations)))
    per_kind = {kind: 1.0 for kind in KINDS}
    per_kind.update({kind: 1 / w for kind, w in zip(present, weights[:-1]) if w > 0})
    return RooflineEfficiency(per_kind, float(weights[-1]), basis)

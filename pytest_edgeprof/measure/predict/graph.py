"""A model as a runtime runs it: every op of an eager forward, or the fused kernels of a TensorRT engine.

Both are read from the eval-mode forward's kernels on meta tensors (``measure/roofline.py``), so
nothing runs and any torchvision or timm model works. Eager PyTorch launches every op: a convolution,
its batch norm, its activation, the residual addition, each reading and writing its tensors from
DRAM. TensorRT (and ONNX Runtime's TensorRT provider) folds the batch norm into the convolution's
weights and fuses the activation and a following addition into its epilogue, so the fused kernel
moves the convolution's input, its weights and one output; chains of elementwise ops with no
convolution before them fold into one kernel, as do the ops after a concatenation (which copies
its inputs: densenet's batch norm and activation on the concatenated features are a kernel of their own).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from torch import nn

from pytest_edgeprof.measure.roofline import Kernel

_ANCHORS = ("conv", "depthwise", "linear", "pool")
_IN_PLACE = {"clone", "_to_copy", "copy_", "contiguous", "dropout", "native_dropout"}
_SECOND_INPUT = {"add", "add_", "mul", "mul_"}  # an epilogue that reads one more activation


@dataclass(frozen=True)
class Work:
    """One kernel as the runtime launches it."""

    kind: str  # one of measure.roofline.KINDS
    flops: int
    elements: int  # read and written, weights included


@dataclass(frozen=True)
class ModelGraph:
    """What a prediction needs of a model at one batch size and input shape."""

    eager: tuple[Work, ...]
    fused: tuple[Work, ...]
    flops: int
    weight_elements: int
    activation_elements: int  # the largest one kernel reads and writes: a rough activation peak


def fuse(found: tuple[Kernel, ...]) -> tuple[Work, ...]:
    """TensorRT's kernels: each convolution, linear layer or pooling with the elementwise ops after it."""
    fused: list[Work] = []
    open_kind: str | None = None  # the kind of the kernel the elementwise ops fold into
    for kernel in found:
        if kernel.op in _IN_PLACE:
            continue
        if kernel.kind in _ANCHORS:
            fused.append(Work(kernel.kind, kernel.flops, kernel.elements))
            open_kind = kernel.kind
            continue
        extra = kernel.elements // 3 if kernel.op in _SECOND_INPUT else 0
        if open_kind is None or kernel.op == "cat":  # a chain of its own: one kernel, moving what its largest op moves
            fused.append(Work("elementwise", kernel.flops, kernel.elements))
            open_kind = "elementwise"
        else:
            last = fused[-1]
            fused[-1] = Work(last.kind, last.flops + kernel.flops, last.elements + extra)
    return tuple(fused)


def eager(found: tuple[Kernel, ...]) -> tuple[Work, ...]:
    return tuple(Work(kernel.kind, kernel.flops, kernel.elements) for kernel in found)


def module_graph(model: nn.Module, batch_size: int, input_shape: tuple[int, int, int]) -> ModelGraph:
    """The graph of ``model`` (a meta copy is read; the model is neither run nor changed)."""
    from pytest_edgeprof.measure.roofline import kernels

    found = kernels(model, input_shape, batch_size)
    weights = sum(parameter.numel() for parameter in model.parameters())
    largest = max((kernel.elements for kernel in found), default=0)
    return ModelGraph(eager(found), fuse(found), sum(k.flops for k in found), weights, largest)


@functools.lru_cache(maxsize=64)
def model_graph(name: str, batch_size: int, input_shape: tuple[int, int, int]) -> ModelGraph:
    """The graph of torchvision/timm model ``name``, built on meta tensors (nothing allocated, nothing run).

    ``name`` may end in ``[num_classes=N]`` (the calibration table's spelling of a classifier published
    with its own number of classes, e.g. ``resnet18[num_classes=3]``): built with that head."""
    from pytest_edgeprof.measure.flops import _meta_model, _size_kwargs  # the builders flops counting uses

    base, extra = split_spec(name)
    return module_graph(_meta_model(base, _size_kwargs(base, input_shape) + extra), batch_size, input_shape)


def split_spec(name: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    """``"resnet18[num_classes=3]"`` -> ``("resnet18", (("num_classes", 3),))``; a plain name -> ``(name, ())``."""
    if not name.endswith("]") or "[" not in name:
        return name, ()
    base, _, inside = name[:-1].partition("[")
    key, _, value = inside.partition("=")
    if key != "num_classes" or not value.isdigit():
        raise ValueError(f"model {name!r}: only [num_classes=N] may follow a model name")
    return base, (("num_classes", int(value)),)

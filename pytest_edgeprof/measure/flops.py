"""FLOPs, MACs and parameters of a model, whole and per layer, counted on meta tensors.

Nothing runs for real: the model's structure is copied with every parameter and buffer replaced by a
``meta`` tensor (shape and dtype, no storage), and one forward pass of a meta input runs under
``torch.utils.flop_counter.FlopCounterMode``. So VGG16 at batch 128 is counted in a fraction of a
second, allocates no activation memory, and the caller's model is neither moved nor changed.

Convention (docs/saved-keys.md): FLOPs = 2 x multiply-accumulates (MACs). Like torchvision's ``_ops`` metadata
(GMACs per image), only the multiply-accumulate work of convolutions, linear layers and matrix
products (attention included) is counted; additions of biases and residuals, normalisation,
activations and pooling are not. torchvision computed ``_ops`` with the same kind of counter (a
``TorchDispatchMode`` over aten ops, after Chillee's flop counter: pytorch/vision#6936). For all 80
classification models in torchvision 0.29, the GMACs counted here, rounded to 3 decimals as ``_ops``
is, equal ``_ops`` at the model's own input size.

Where a forward cannot run on meta tensors because it reads values (a detection model's NMS, top-k of
scores, RoI sampling), :func:`count_cost` may count one real forward of a random input instead
(``method="real-forward"``). Its count then depends on that input where the work does: a two-stage
detector's RoI heads run once per proposal, so their share (``data_dependent_flops``) is said
beside the total. torchvision's ``_ops`` for those detectors leaves the RoI heads out.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.models.zoo import (
    architecture,
    build_model,
    is_timm,
    reference_input_shape,
    resolve_model_name,
    takes_image_list,
    task_of,
)
from pytest_edgeprof.shared_options import MAX_BATCH_SIZE, MAX_SIDE, shape_text

META, REAL_FORWARD = "meta", "real-forward"
DATA_DEPENDENT_MODULES = ("roi_heads",)  # children whose work scales with the proposals a real input gives


@dataclass(frozen=True)
class LayerCost:
    """The cost of one module of the model (its own work, not its children's)."""

    name: str  # qualified module name, e.g. "features.0"; "" for the model itself
    type: str  # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # of its first output tensor, at its first call
    flops: int
    macs: int
    params: int  # the module's own parameters, not its children's
    activation_bytes: int  # bytes of its output tensor(s), summed over its calls in one forward


@dataclass(frozen=True)
class ModelCost:
    """The cost of one forward pass of one batch."""

    flops: int  # = 2 * macs, for the whole batch
    macs: int
    params: int
    batch_size: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    layers: tuple[LayerCost, ...] = ()
    method: str = META  # META, or REAL_FORWARD where the forward reads values
    data_dependent_flops: int = 0  # the share of ``flops`` that depends on the input's values (RoI heads)

    @property
    def note(self) -> str:
        """What a real-forward count depends on, in one line; "" for a meta count."""
        if self.method == META:
            return ""
        if self.data_dependent_flops:
            share = self.data_dependent_flops / self.flops
            return (f"counted on one forward of a random input: the RoI heads' {share:.0%} of the FLOPs depends "
                    "on the number of proposals; NMS is not counted")
        return "counted on one forward of a random input; NMS and box decoding are not counted"


def count_cost(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    batch_size: int = 1,
    per_layer: bool = False,
    *,
    real_forward: bool = False,
) -> ModelCost:
    """Count one eval-mode forward pass of ``batch_size`` inputs of ``input_shape`` (C, H, W).

    The model may live on any device with real weights: it is copied onto meta tensors first, so it is
    not run, moved, put in eval mode or otherwise changed. Where its forward cannot run on meta tensors
    and ``real_forward`` is set, one real forward of a random input on the model's device is counted
    (in eval mode, without gradients; the model is left as it was).
    """
    shape = check_input_shape(input_shape)
    batch = check_batch_size(batch_size)
    try:
        return _count(meta_copy(model).eval(), model, shape, batch, per_layer, META)
    except Exception:
        if not real_forward:
            raise
    was_training = model.training
    try:
        return _count(model.eval(), model, shape, batch, per_layer, REAL_FORWARD)
    finally:
        model.train(was_training)


def _count(runnable: nn.Module, model: nn.Module, shape: tuple[int, int, int], batch: int, per_layer: bool,
           method: str) -> ModelCost:
    tracker = _LayerTracker(runnable)
    counter = FlopCounterMode(display=False)
    with tracker.attached(counter), counter, torch.no_grad():
        runnable(_random_input(runnable, shape, batch, method))
    macs = counter.get_total_flops() // 2
    by_module = counter.get_flop_counts()
    data_dependent = sum(sum(by_module.get(f"{type(runnable).__name__}.{name}", {}).values())
                         for name in DATA_DEPENDENT_MODULES)
    return ModelCost(
        flops=2 * macs,
        macs=macs,
        params=_count_params(model),
        batch_size=batch,
        input_shape=shape,
        layers=tracker.layers() if per_layer else (),
        method=method,
        data_dependent_flops=data_dependent if method == REAL_FORWARD else 0,
    )


def _random_input(model: nn.Module, shape: tuple[int, int, int], batch: int, method: str) -> Any:
    """The input one forward takes: a batch tensor, or a detection model's list of images in [0, 1]."""
    dtype = input_dtype(model)
    if method == META:
        x = torch.empty((batch, *shape), dtype=dtype, device="meta")
    else:
        device = next(iter(model.parameters()), torch.empty(0)).device
        x = torch.rand((batch, *shape), dtype=dtype, generator=torch.Generator().manual_seed(0)).to(device)
    return list(x.unbind(0)) if takes_image_list(model) else x


def count_model_cost(
    name: str,
    input_shape: tuple[int, int, int] | None = None,
    batch_size: int = 1,
    per_layer: bool = False,
) -> ModelCost:
    """Count a model by name, built on the meta device (no weights); a detection model, whose forward
    reads values, on one real forward of a random input on the CPU (``method="real-forward"``).

    ``input_shape`` defaults to the model's own input size (:func:`reference_input_shape`). Models
    whose architecture depends on the input size (ViT, MaxViT) are built for the shape asked for.
    """
    name = resolve_model_name(name)
    shape = reference_input_shape(name) if input_shape is None else check_input_shape(input_shape)
    try:
        if task_of(name) == "detection":
            return count_cost(build_model(name), shape, batch_size, per_layer, real_forward=True)
        model = _meta_model(name, _size_kwargs(name, shape))
        return count_cost(model, shape, batch_size, per_layer)
    except (RuntimeError, ValueError, AssertionError) as error:
        # Builders and forwards reject sizes they cannot take in their own ways (too small for a
        # kernel, not divisible by a patch or window): at any size but the model's own, that is the
        # user's shape, not a bug.
        if isinstance(error, UsageError) or shape == reference_input_shape(name):
            raise
        raise UsageError(
            f"{name} cannot take input shape {shape_text(shape)}: {first_line(error)}; "
            f"its own input shape is {shape_text(reference_input_shape(name))}"
        ) from error


def check_model_input(name: str, input_shape: tuple[int, int, int]) -> None:
    """``UsageError`` if the model cannot take ``input_shape`` (too small, not square, not divisible by a
    patch), found on meta tensors without real compute. A model the counter cannot follow passes: a
    real run will tell (a detection model, whose transform pads any size, is left to it)."""
    if task_of(resolve_model_name(name)) == "detection":
        return
    try:
        count_model_cost(name, input_shape)
    except UsageError:
        raise
    except Exception:  # not the user's shape (count_model_cost lets those through at the model's own size)
        pass


# --- building a torchvision model without memory ---------------------------------------------------


def _size_kwargs(name: str, shape: tuple[int, int, int]) -> tuple[tuple[str, Any], ...]:
    """Builder arguments that fix the input size, for architectures built for one size.

    torchvision's own builders set these from the weights' ``min_size`` (vision_transformer.py,
    maxvit.py); without weights they would build for 224 and refuse any other size.
    """
    if is_timm(name):
        return ()
    family = torchvision.models.get_model_builder(name).__module__.rsplit(".", 1)[-1]
    height, width = shape[1], shape[2]
    if family == "vision_transformer":
        if height != width:
            raise UsageError(f"{name} takes square inputs only, not {shape_text(shape)}")
        return (("image_size", height),)
    if family == "maxvit":
        return (("input_size", (height, width)),)
    return ()


@lru_cache(maxsize=8)
def _meta_model(name: str, size_kwargs: tuple[tuple[str, Any], ...]) -> nn.Module:
    """Build ``name`` with meta parameters and buffers. Cached: count_cost never changes it."""
    kwargs = dict(size_kwargs)
    with warnings.catch_warnings():
        # googlenet / inception_v3 warn that their default init will change; irrelevant on meta.
        warnings.filterwarnings("ignore", message="The default weight initialization", category=FutureWarning)
        try:
            with torch.device("meta"):
                return architecture(name, **kwargs)
        except NotImplementedError:
            # The builder computes with tensors (RegNet derives its widths with torch ops), which
            # meta tensors cannot do: build on the CPU, turning each parameter and buffer into a meta
            # tensor as it is registered, so none holds memory for long.
            with _register_on_meta():
                return architecture(name, **kwargs)


@contextlib.contextmanager
def _register_on_meta() -> Iterator[None]:
    def parameter_to_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> nn.Parameter | None:
        if param is None:
            return None
        return nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    def buffer_to_meta(module: nn.Module, name: str, buffer: torch.Tensor | None) -> torch.Tensor | None:
        return None if buffer is None else buffer.to("meta")

    handles = [
        nn.modules.module.register_module_parameter_registration_hook(
            parameter_to_meta  # type: ignore[arg-type]  # torch: Callable[..., None], yet it uses the return
        ),
        nn.modules.module.register_module_buffer_registration_hook(
            buffer_to_meta  # type: ignore[arg-type]  # torch: Callable[..., None], yet it uses the return
        ),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# --- copying a model onto meta tensors -------------------------------------------------------------


def meta_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose parameters and buffers are meta tensors.

    Pre-filling deepcopy's memo with meta stand-ins means the real tensors are never copied.
    """
    memo: dict[int, Any] = {}
    for param in model.parameters():
        memo[id(param)] = nn.Parameter(torch.empty_like(param, device="meta"), requires_grad=param.requires_grad)
    for buffer in model.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device="meta")
    return copy.deepcopy(model, memo)


def input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype a model's input takes: its first floating parameter's (torch's default where it has none)."""
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def _count_params(model: nn.Module) -> int:
    return sum(param.numel() for param in model.parameters())


# --- per-layer attribution -------------------------------------------------------------------------


class _LayerTracker:
    """Attributes the counter's FLOPs to the module whose own code ran them.

    Each module's self FLOPs are the FLOPs counted during its forward minus those counted during the
    forwards nested inside it, so the layers' FLOPs add up to the model's total exactly.
    """

    def __init__(self, model: nn.Module) -> None:
        self._modules = dict(model.named_modules())
        self._names = {id(module): name for name, module in self._modules.items()}
        self._stack: list[list[int]] = []  # [flops at entry, flops of nested calls]
        self._called: dict[str, None] = {}  # names in order of first call
        self._flops: dict[str, int] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._bytes: dict[str, int] = {}

    @contextlib.contextmanager
    def attached(self, counter: FlopCounterMode) -> Iterator[None]:
        handles = []
        for module in self._modules.values():
            handles.append(module.register_forward_pre_hook(self._entered(counter)))
            handles.append(module.register_forward_hook(self._left(counter)))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _entered(self, counter: FlopCounterMode):
        def hook(module: nn.Module, args: Any) -> None:
            self._called.setdefault(self._names[id(module)])
            self._stack.append([counter.get_total_flops(), 0])

        return hook

    def _left(self, counter: FlopCounterMode):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            start, nested = self._stack.pop()
            inclusive = counter.get_total_flops() - start
            if self._stack:
                self._stack[-1][1] += inclusive
            name = self._names[id(module)]
            self._flops[name] = self._flops.get(name, 0) + inclusive - nested
            tensors = [t for t in _flatten(output) if isinstance(t, torch.Tensor)]
            self._shapes.setdefault(name, tuple(tensors[0].shape) if tensors else ())
            self._bytes[name] = self._bytes.get(name, 0) + sum(t.numel() * t.element_size() for t in tensors)

        return hook

    def layers(self) -> tuple[LayerCost, ...]:
        """Modules that ran, in order of first call: every leaf, and any other that did work or owns parameters."""
        layers = []
        for name in self._called:
            module = self._modules[name]
            flops = self._flops[name]
            own_params = sum(p.numel() for p in module.parameters(recurse=False))
            is_leaf = next(module.children(), None) is None
            if is_leaf or flops or own_params:
                layers.append(
                    LayerCost(
                        name=name,
                        type=type(module).__name__,
                        output_shape=self._shapes[name],
                        flops=flops,
                        macs=flops // 2,
                        params=own_params,
                        activation_bytes=self._bytes[name],
                    )
                )
        return tuple(layers)


def _flatten(output: Any) -> Iterator[Any]:
    if isinstance(output, (tuple, list)):
        for item in output:
            yield from _flatten(item)
    elif isinstance(output, dict):
        for item in output.values():
            yield from _flatten(item)
    else:
        yield output


# --- argument checks -------------------------------------------------------------------------------


_MAX_IMAGE = 3 * MAX_SIDE**2  # elements of one input: with MAX_BATCH_SIZE of them torch still counts in int64


def check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    """``input_shape`` as (C, H, W) of positive ints within the bounds, or ``UsageError`` naming it."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if (len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_SIDE for d in shape)
            or shape[0] * shape[1] * shape[2] > _MAX_IMAGE):
        raise UsageError(f"input shape {input_shape!r} is not (C, H, W) with three positive integers "
                         f"(each up to {MAX_SIDE}, {_MAX_IMAGE} elements in all)")
    return shape


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` if it is a positive int within the bound, else ``UsageError`` naming it."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 0 < batch_size <= MAX_BATCH_SIZE:
        raise UsageError(f"batch size {batch_size!r} is not a positive integer up to {MAX_BATCH_SIZE}")
    return batch_size

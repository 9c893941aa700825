"""Structured pruning to an exact FLOPs target (torch-pruning, DepGraph).

How a target is hit without crawling:

1. torch-pruning's DependencyGraph is built once (one traced forward pass). Its groups are the sets of
   channels that must go together (a conv's outputs, the BatchNorm after it, the next convs' inputs,
   residual adds, concatenations). Each group's channels are ranked once by importance (magnitude,
   or Taylor when data is given).
2. A plan is a number of channels to remove from each group. Its FLOPs are computed without running
   anything: a convolution's or linear layer's multiply-accumulates scale with its kept input and
   output channels, and the group's index mapping (from the graph) says how many of each layer's
   channels a plan removes. The base per-layer FLOPs come from :func:`flops.count_cost` (meta tensors).
3. The plan is searched: bisection on the channel ratio shared by all groups (torch-pruning's local
   pruning, ``n - int(n * (1 - ratio))`` channels per group), then single-channel moves until the
   estimate is as close to the target as channels allow.
4. The real model is pruned once, its FLOPs counted exactly on meta tensors, and the result refused
   (:class:`PruneUnsupported`) if it is not within ``tolerance`` of the target.

Which layers keep their width (:func:`_kept_layers`): a classifier's last layer; a segmenter's layers that
output its classes; a detector's heads' output layers (class logits, box regression, centerness, per
level for SSD) and its neck's outputs (the FPN's convolutions, whose channels every head level reads),
so its backbone, the neck's inputs and the heads' inner layers (RPN convolution, the RoI box head's
MLP, RetinaNet's and FCOS's towers) are pruned. A ViT's, Swin's and MaxViT's embedding width is cut with
the same positions in every attention head, so the number of heads stays and the heads get narrower
(:mod:`attention` says how); any other attention keeps its width, and such a model is pruned in its MLPs'
hidden layers only. A detector's FLOPs are counted on one real forward (``flops.count_cost``), so the
target is met on the same count the cell reports.
"""

from __future__ import annotations

import bisect
import copy
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.measurement import Pruning
from pytest_edgeprof.measure.flops import ModelCost, count_cost, input_dtype, meta_copy
from pytest_edgeprof.models.prune import attention
from pytest_edgeprof.models.prune.targets import check_method, variant_name
from pytest_edgeprof.models.zoo import model_input, takes_image_list
from pytest_edgeprof.shared_options import shape_text

DEFAULT_TOLERANCE = 0.01  # achieved FLOPs reduction within +-1 percentage point of the target


class PruneUnsupported(Exception):
    """This model cannot be pruned to this target; the message says why (the plugin skips the cell)."""


@dataclass(frozen=True)
class PruneResult:
    model: nn.Module
    target: float  # fraction of FLOPs asked to be removed
    achieved: float  # fraction of FLOPs removed, counted at the reference input
    method: str
    params_before: int
    params_after: int
    flops_before: int  # at batch 1 and the reference input
    flops_after: int
    seconds: float  # wall time of the call that returned this (pruning, or loading from the cache)
    from_cache: bool
    input_shape: tuple[int, int, int] = (3, 224, 224)  # the reference input the FLOPs were counted at
    history: tuple = field(default=(), repr=False)  # torch-pruning's history: (root layer, out?, indices)
    model_name: str = ""  # the torchvision name, when built by name (pruned_model, load_variant)
    cache_key: str = field(default="", repr=False)

    @property
    def variant(self) -> str:
        return variant_name(self.target)

    def pruning(self) -> Pruning:
        """What the variant really is, for the cell's record (fractions, at the reference input)."""
        return Pruning(self.target, round(self.achieved, 6), self.method, self.params_before, self.params_after,
                       tuple(self.input_shape))


# --- pruning ---------------------------------------------------------------------------------------


def prune_to_flops(
    model: nn.Module,
    target: float,
    input_shape: tuple[int, int, int],
    *,
    method: str = "magnitude",
    example_data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    progress: bool = False,
    inplace: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> PruneResult:
    """Remove ``target`` of ``model``'s FLOPs at ``input_shape`` by structured channel pruning.

    Prunes a deep copy unless ``inplace``; the returned model is in eval mode on the input model's
    device. The final classifier layer (the last conv/linear layer to run) keeps its output width.
    ``method="taylor"`` ranks channels by |weight x gradient| of the cross-entropy loss summed over
    ``example_data`` (batches of (images, labels)); magnitude ranks them by their L2 norm.
    Raises :class:`PruneUnsupported` when torch-pruning cannot handle the model or the target cannot
    be reached within ``tolerance``.
    """
    check_method(method)
    if not 0 < target < 1:
        raise UsageError(f"prune target {target!r} is not a fraction between 0 and 1")
    if method == "taylor" and example_data is None:
        raise UsageError("pruning method 'taylor' needs example data (batches of images and labels)")
    with _stages(progress, f"pruning to {variant_name(target)}", len(PRUNE_STAGES)) as stage:
        model = model if inplace else copy.deepcopy(model)
        return _prune(model, target, input_shape, method, example_data, tolerance, stage)


PRUNE_STAGES = (
    "counting FLOPs",
    "tracing the dependency graph",
    "ranking channels",
    "searching the plan",
    "pruning",
    "checking",
)


def _prune(
    model: nn.Module,
    target: float,
    input_shape: tuple[int, int, int],
    method: str,
    example_data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None,
    tolerance: float,
    stage: Callable[[str], None],
) -> PruneResult:
    started = time.perf_counter()
    model.eval()
    stage(PRUNE_STAGES[0])
    before = count_cost(model, input_shape, per_layer=True, real_forward=True)
    kept = _kept_layers(model, input_shape)
    widths = [_width(layer) for layer in kept]
    stage(PRUNE_STAGES[1])
    graph = _dependency_graph(model, input_shape, ignored=kept + _beside_the_mlps(model))
    stage(PRUNE_STAGES[2])
    if method == "taylor":
        _accumulate_gradients(model, example_data)
    groups = _rank_groups(graph, method)
    stage(PRUNE_STAGES[3])
    estimator = _FlopsEstimator(model, before, groups)
    plan = _search_plan(estimator, target, tolerance)
    stage(PRUNE_STAGES[4])
    history = _apply_plan(graph, groups, plan)
    attention.finish(model)
    _clear_gradients(model)
    stage(PRUNE_STAGES[5])
    after = _verified_cost(model, input_shape, kept, widths)
    achieved = 1 - after.flops / before.flops
    if abs(achieved - target) > tolerance:
        raise PruneUnsupported(
            f"pruning removed {achieved:.1%} of the FLOPs, not {target:.1%} +- {tolerance:.1%} "
            f"(the plan estimated {1 - estimator.flops(plan) / before.flops:.1%})"
        )
    return PruneResult(
        model=model.eval(),
        target=target,
        achieved=achieved,
        method=method,
        params_before=before.params,
        params_after=after.params,
        flops_before=before.flops,
        flops_after=after.flops,
        seconds=time.perf_counter() - started,
        from_cache=False,
        input_shape=tuple(input_shape),
        history=tuple(history),
    )


DETECTION_HEADS = ("head", "rpn", "roi_heads")
DETECTION_OUTPUTS = ("cls_logits", "bbox_pred", "bbox_reg", "bbox_ctrness", "cls_score")  # torchvision's names


def _kept_layers(model: nn.Module, input_shape: tuple[int, int, int]) -> list[nn.Module]:
    """The layers whose output width pruning keeps (the module's docstring says which, per task)."""
    if takes_image_list(model):
        return _detector_outputs(model)
    called, output = _meta_run(model, input_shape)
    if isinstance(output, dict) and isinstance(output.get("out"), torch.Tensor):  # torchvision's segmenters
        classes = output["out"].shape[1]
        return [model.get_submodule(name) for name in dict.fromkeys(called) if _width(model.get_submodule(name)) == classes]
    if not isinstance(output, torch.Tensor):
        raise PruneUnsupported("the model returns neither a tensor nor a segmenter's masks nor a detector's boxes")
    return [model.get_submodule(called[-1])]


def _detector_outputs(model: nn.Module) -> list[nn.Module]:
    """A detector's heads' output layers and its FPN's convolutions."""
    layers = (nn.modules.conv._ConvNd, nn.Linear)
    kept = [m for m in model.backbone.fpn.modules() if isinstance(m, layers)] if hasattr(model.backbone, "fpn") else []
    for part in (getattr(model, name) for name in DETECTION_HEADS if hasattr(model, name)):
        kept += [m for name, m in part.named_modules() if isinstance(m, layers) and name.rsplit(".", 1)[-1] in DETECTION_OUTPUTS]
        for name, module_list in part.named_modules():  # SSD: one output convolution per feature level
            if name.endswith("module_list"):
                kept += [[m for m in level.modules() if isinstance(m, layers)][-1] for level in module_list]
    return kept


def _meta_run(model: nn.Module, input_shape: tuple[int, int, int]) -> tuple[list[str], Any]:
    """The conv and linear layers a meta forward pass runs, in order, and its output."""
    meta = meta_copy(model)
    names = {module: name for name, module in meta.named_modules()}
    called: list[str] = []
    handles = [
        module.register_forward_hook(lambda m, i, o: called.append(names[m]))
        for module in meta.modules()
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))
    ]
    try:
        with torch.no_grad():
            output = meta(torch.empty((1, *input_shape), device="meta", dtype=input_dtype(model)))
    except Exception as error:
        raise PruneUnsupported(f"the model does not run at input {shape_text(input_shape)}: {first_line(error, with_type=True)}")
    finally:
        for handle in handles:
            handle.remove()
    if not called:
        raise PruneUnsupported("the model has no convolution or linear layer to prune")
    return called, output


def _dependency_graph(model: nn.Module, input_shape: tuple[int, int, int], ignored: list[nn.Module]) -> Any:
    import torch_pruning as tp

    device = next(model.parameters()).device
    example = model_input(model, 1, input_shape, str(device))
    try:
        with torch.enable_grad(), attention.traceable(model):
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    except Exception as error:
        raise PruneUnsupported(f"torch-pruning cannot trace the model: {first_line(error, with_type=True)}")
    graph.edgeprof_ignored = list(ignored)
    graph.edgeprof_attention = attention.kept_attention(model)
    graph.edgeprof_heads = attention.head_counts(model)
    return graph


def _beside_the_mlps(model: nn.Module) -> list[nn.Module]:
    """In a model with attention that keeps its width, every conv and linear layer but the MLPs' hidden
    ones (a Linear that a later Linear of the same Sequential reads through activations and dropout
    only); none otherwise."""
    if not attention.kept_attention(model):
        return []
    hidden = set()
    for sequential in (m for m in model.modules() if isinstance(m, nn.Sequential)):
        layers = list(sequential)
        for index, layer in enumerate(layers):
            rest = layers[index + 1:]
            following = next((i for i, m in enumerate(rest) if not isinstance(m, (nn.GELU, nn.ReLU, nn.SiLU, nn.Dropout))), None)
            if isinstance(layer, nn.Linear) and following is not None and isinstance(rest[following], nn.Linear):
                hidden.add(layer)
    return [m for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m not in hidden]


def _accumulate_gradients(model: nn.Module, example_data: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Gradients of the summed cross-entropy over the example batches, for Taylor importance."""
    device = next(model.parameters()).device
    model.zero_grad(set_to_none=True)
    for param in model.parameters():
        param.requires_grad_(param.is_floating_point())
    seen = 0
    with torch.enable_grad():
        for images, labels in example_data:
            loss = nn.functional.cross_entropy(model(images.to(device)), labels.to(device), reduction="sum")
            loss.backward()
            seen += len(labels)
    if not seen:
        raise UsageError("pruning method 'taylor' was given example data with no images")


def _clear_gradients(model: nn.Module) -> None:
    for param in model.parameters():
        param.grad = None


@dataclass
class _Group:
    """One DepGraph group, its channels ranked, and what removing k of them does to each layer."""

    root: nn.Module
    root_fn: Callable
    order: list[int]  # channel positions within one chunk, least important first
    size: int  # channels per chunk
    chunks: int  # channel groups (grouped convolutions): the same positions go from every chunk
    effects: list[tuple[str, str, list[int]]]  # (layer name, "out" | "in" | "dw", sorted ranks of its indices)

    def removed(self, ranks: list[int], k: int) -> int:
        """How many of a layer's indices go when the k least important channels of each chunk go."""
        return bisect.bisect_left(ranks, k)

    def indices(self, k: int) -> list[int]:
        chosen = sorted(self.order[:k])
        return [position + chunk * self.size for chunk in range(self.chunks) for position in chosen]


def _rank_groups(graph: Any, method: str) -> list[_Group]:
    import torch_pruning as tp

    importance = tp.importance.TaylorImportance() if method == "taylor" else tp.importance.MagnitudeImportance(p=2)
    names = {module: name for name, module in graph.model.named_modules()}
    groups = []
    for group in graph.get_all_groups(ignored_layers=graph.edgeprof_ignored, root_module_types=[nn.Conv2d, nn.Linear]):
        if _has_single_channel_layer(graph, group):
            continue  # torch-pruning never prunes a layer down from one channel
        if any(dep.target.module in graph.edgeprof_attention for dep, _ in group):
            continue  # this attention keeps its width: num_heads x head width must still hold
        chunks = _channel_chunks(graph, group)
        try:
            scores = importance(group)
        except Exception as error:  # e.g. a layer the example data never reached has no gradient
            raise PruneUnsupported(f"ranking the channels ({method}) failed: {first_line(error, with_type=True)}")
        if scores is None or len(scores) % chunks:
            continue
        size = len(scores) // chunks
        scores = scores.view(chunks, size).mean(dim=0) if chunks > 1 else scores
        order = torch.argsort(scores.float().cpu(), stable=True).tolist()
        rank = [0] * size
        for position, channel in enumerate(order):
            rank[channel] = position
        groups.append(
            _Group(
                root=group[0].dep.target.module,
                root_fn=group[0].dep.handler,
                order=order,
                size=size,
                chunks=chunks,
                effects=_effects(graph, group, names, rank, size),
            )
        )
    if not groups:
        why = (" (a model with attention is pruned in its MLPs' hidden layers only; attention keeps its width)"
               if graph.edgeprof_attention else "")
        raise PruneUnsupported(f"torch-pruning found no channel group it can prune{why}")
    return groups


def _has_single_channel_layer(graph: Any, group: Any) -> bool:
    for dep, _ in group:
        out_fn = graph.is_out_channel_pruning_fn(dep.handler)
        channels = graph.get_out_channels(dep.target.module) if out_fn else graph.get_in_channels(dep.target.module)
        if channels == 1:
            return True
    return False


def _channel_chunks(graph: Any, group: Any) -> int:
    """Channel groups of the grouped convolutions in the group (depthwise ones do not count), as torch-pruning
    does, and the heads of the attention in it."""
    chunks = [1]
    for dep, _ in group:
        module = dep.target.module
        if module in graph.edgeprof_heads:
            chunks.append(graph.edgeprof_heads[module])
        elif isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1 and module.groups != module.out_channels:
            chunks.append(module.groups)
        elif isinstance(module, nn.GroupNorm):
            chunks.append(module.num_groups)
    return max(chunks)


def _effects(graph: Any, group: Any, names: dict, rank: list[int], size: int) -> list[tuple[str, str, list[int]]]:
    effects = []
    for item in group:
        module = item.dep.target.module
        if not isinstance(module, (nn.modules.conv._ConvNd, nn.Linear, nn.MultiheadAttention)):
            continue
        if any(root is None for root in item.root_idxs):
            raise PruneUnsupported(f"torch-pruning cannot map the channels of {names[module]} to its group")
        if _is_depthwise(module):
            kind = "dw"
        elif graph.is_out_channel_pruning_fn(item.dep.handler):
            kind = "out"
        else:
            kind = "in"
        effects.append((names[module], kind, sorted(rank[root % size] for root in item.root_idxs)))
    return effects


def _is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1 and module.groups == module.out_channels


class _FlopsEstimator:
    """FLOPs of a plan (channels removed per group), without pruning or running anything."""

    def __init__(self, model: nn.Module, cost: ModelCost, groups: list[_Group]) -> None:
        self.groups = groups
        self.fixed = 0  # FLOPs of work that does not scale with pruned channels
        self.layers: dict[str, tuple[int, int, int]] = {}  # name -> (flops, out channels, in channels)
        self.attention: dict[str, tuple[str, int, int, int]] = {}  # name -> (width layer, width, projections' FLOPs, the rest's)
        cut = attention.cuts_attention(model)
        for layer in cost.layers:  # counted per layer, before pruning
            module = model.get_submodule(layer.name) if layer.name else model
            terms = attention.cost_terms(module, layer) if cut else None
            if terms is not None:
                self.attention[layer.name] = terms
            elif isinstance(module, nn.modules.conv._ConvNd):
                self.layers[layer.name] = (layer.flops, module.out_channels, module.in_channels)
            elif isinstance(module, nn.Linear):
                self.layers[layer.name] = (layer.flops, module.out_features, module.in_features)
            else:
                self.fixed += layer.flops
        self.terms = dict.fromkeys([*self.layers, *self.attention])  # every layer whose FLOPs scale with pruning
        self.affected: dict[str, set[str]] = defaultdict(set)  # a layer -> the terms its removed channels change
        for name in self.layers:
            self.affected[name].add(name)
        for name, (width_layer, *_) in self.attention.items():
            self.affected[width_layer].add(name)
        self.total = self.fixed + sum(flops for flops, _, _ in self.layers.values())
        self.total += sum(projections + rest for _, _, projections, rest in self.attention.values())

    def flops(self, plan: list[int]) -> float:
        removed = self._removed(plan)
        return self.fixed + sum(self._term(name, removed.get) for name in self.terms)

    def reduction(self, plan: list[int]) -> float:
        return 1 - self.flops(plan) / self.total

    def moves(self, plan: list[int]) -> Iterator[tuple[int, int, float]]:
        """Every plan one channel away from ``plan``, as (group, its new count, FLOPs), each in O(its layers)."""
        removed = self._removed(plan)
        current = self.fixed + sum(self._term(name, removed.get) for name in self.terms)
        for index, (group, k) in enumerate(zip(self.groups, plan)):
            for new_k in (k - 1, k + 1):
                if not 0 <= new_k <= group.size - 1:
                    continue
                change: dict[tuple[str, str], int] = defaultdict(int)
                for name, kind, ranks in group.effects:
                    change[name, kind] += group.removed(ranks, new_k) - group.removed(ranks, k)

                def moved(key: tuple[str, str], default: int = 0, change: dict = change) -> int:
                    return removed.get(key, default) + change.get(key, 0)

                names = {term for name, _ in change for term in self.affected.get(name, ())}
                delta = sum(self._term(name, moved) - self._term(name, removed.get) for name in names)
                yield index, new_k, current + delta

    def _removed(self, plan: list[int]) -> dict[tuple[str, str], int]:
        removed: dict[tuple[str, str], int] = defaultdict(int)
        for group, k in zip(self.groups, plan):
            if k:
                for name, kind, ranks in group.effects:
                    removed[name, kind] += group.removed(ranks, k)
        return dict(removed)

    def _term(self, name: str, removed: Callable[..., int]) -> float:
        """A layer's FLOPs once ``removed((name, kind), 0)`` of its channels of each kind are gone (an
        attention's once its width layer's output channels are)."""
        if name in self.attention:
            width_layer, width, projections, rest = self.attention[name]
            kept = 1 - removed((width_layer, "out"), 0) / width
            return projections * kept * kept + rest * kept
        flops, out, in_ = self.layers[name]
        if removed((name, "dw"), 0):
            return flops * (out - removed((name, "dw"), 0)) / out
        return flops * (out - removed((name, "out"), 0)) / out * (in_ - removed((name, "in"), 0)) / in_


def _uniform_plan(groups: list[_Group], ratio: float) -> list[int]:
    """torch-pruning's local pruning at one channel ratio: n - int(n * (1 - ratio)) channels per group."""
    return [min(g.size - 1, g.size - int(g.size * (1 - ratio))) for g in groups]


def _search_plan(estimator: _FlopsEstimator, target: float, tolerance: float) -> list[int]:
    groups = estimator.groups
    most = [g.size - 1 for g in groups]
    if estimator.reduction(most) < target - tolerance:
        raise PruneUnsupported(
            f"at most {estimator.reduction(most):.1%} of the FLOPs can be removed by channel pruning, "
            f"not {target:.0%}"
        )
    low, high = 0.0, 1.0
    for _ in range(30):  # the reduction grows with the ratio in steps; find the step that crosses target
        middle = (low + high) / 2
        if estimator.reduction(_uniform_plan(groups, middle)) < target:
            low = middle
        else:
            high = middle
    candidates = [_uniform_plan(groups, low), _uniform_plan(groups, high)]
    plan = min(candidates, key=lambda p: abs(estimator.reduction(p) - target))
    return _refine(estimator, plan, target)


def _refine(estimator: _FlopsEstimator, plan: list[int], target: float, good_enough: float = 0.001) -> list[int]:
    """Move single channels in or out of groups while that brings the estimate closer to the target."""
    plan = list(plan)
    goal = estimator.total * (1 - target)  # FLOPs to keep
    error = abs(estimator.flops(plan) - goal)
    for _ in range(200):
        if error <= good_enough * estimator.total:
            break
        best = min(estimator.moves(plan), key=lambda move: abs(move[2] - goal), default=None)
        if best is None or abs(best[2] - goal) >= error:
            break
        index, k, flops = best
        plan[index] = k
        error = abs(flops - goal)
    return plan


def _apply_plan(graph: Any, groups: list[_Group], plan: list[int]) -> list[list]:
    """Prune the real model; groups own disjoint channels, so each group's indices stay valid."""
    try:
        for group, k in zip(groups, plan):
            if k:
                pruning = graph.get_pruning_group(group.root, group.root_fn, group.indices(k))
                if not graph.check_pruning_group(pruning):
                    raise PruneUnsupported("the plan would remove every channel of a layer")
                pruning.prune()
    except PruneUnsupported:
        raise
    except Exception as error:
        raise PruneUnsupported(f"torch-pruning failed on the model: {first_line(error, with_type=True)}")
    return [[name, bool(out), [int(i) for i in idxs]] for name, out, idxs in graph.pruning_history()]


def _verified_cost(model: nn.Module, input_shape: tuple[int, int, int], kept: list[nn.Module], widths: list[int]) -> ModelCost:
    """The pruned model's exact cost; it must still run, and its kept layers keep their output width."""
    try:
        cost = count_cost(model, input_shape, real_forward=True)
    except Exception as error:
        raise PruneUnsupported(f"the pruned model does not run: {first_line(error, with_type=True)}")
    for layer, width in zip(kept, widths):
        if _width(layer) != width:
            raise PruneUnsupported(f"pruning changed a kept layer's output width from {width} to {_width(layer)}")
    return cost


def _width(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


# --- small helpers ---------------------------------------------------------------------------------


@contextmanager
def _stages(enabled: bool, description: str, total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar over named stages, on stderr; a no-op when disabled."""
    if not enabled:
        yield lambda label: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=description, file=sys.stderr, unit="stage", leave=False) as bar:
        started = [False]

        def stage(label: str) -> None:
            if started[0]:
                bar.update(1)
            started[0] = True
            bar.set_postfix_str(label)

        yield stage
        bar.update(bar.total - bar.n)

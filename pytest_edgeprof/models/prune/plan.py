"""Structured pruning to an exact FLOPs target (torch-pruning, DepGraph): ``prune_to_flops``.

The channel groups are ``groups.py``'s, the plan's estimate and search ``search.py``'s.

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

Which layers keep their width (:func:`groups.kept_layers`): a classifier's last layer; a segmenter's layers that
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

import copy
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.measure.flops import ModelCost, check_input_shape, count_cost
from pytest_edgeprof.measurement import Pruning
from pytest_edgeprof.models.prune import attention
from pytest_edgeprof.models.prune.groups import (
    accumulate_gradients,
    beside_the_mlps,
    clear_gradients,
    dependency_graph,
    kept_layers,
    output_width,
    rank_groups,
)
from pytest_edgeprof.models.prune.search import FlopsEstimator, apply_plan, search_plan
from pytest_edgeprof.models.prune.targets import PruneUnsupported, check_method, variant_name

__all__ = ["DEFAULT_TOLERANCE", "PRUNE_STAGES", "PruneResult", "PruneUnsupported", "prune_to_flops"]

DEFAULT_TOLERANCE = 0.01  # achieved FLOPs reduction within +-1 percentage point of the target


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
        raise UsageError(_TAYLOR_NEEDS_DATA)
    with _stages(progress, f"pruning to {variant_name(target)}", len(PRUNE_STAGES)) as stage:
        model = model if inplace else copy.deepcopy(model)
        return _prune(model, target, input_shape, method, example_data, tolerance, stage)


_TAYLOR_NEEDS_DATA = "pruning method 'taylor' needs example data (batches of images and labels)"

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
    kept = kept_layers(model, input_shape)
    widths = [output_width(layer) for layer in kept]
    stage(PRUNE_STAGES[1])
    graph = dependency_graph(model, input_shape, ignored=kept + beside_the_mlps(model))
    stage(PRUNE_STAGES[2])
    if method == "taylor":
        if example_data is None:  # prune() says so before copying the model; pruned_variant() here
            raise UsageError(_TAYLOR_NEEDS_DATA)
        accumulate_gradients(model, example_data)
    groups = rank_groups(graph, method)
    stage(PRUNE_STAGES[3])
    estimator = FlopsEstimator(model, before, groups)
    plan = search_plan(estimator, target, tolerance)
    stage(PRUNE_STAGES[4])
    history = apply_plan(graph, groups, plan)
    attention.finish(model)
    clear_gradients(model)
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
        input_shape=check_input_shape(input_shape),  # as count_cost checked it: a (C, H, W) tuple of ints
        history=tuple(history),
    )


def _verified_cost(model: nn.Module, input_shape: tuple[int, int, int], kept: list[nn.Module], widths: list[int]) -> ModelCost:
    """The pruned model's exact cost; it must still run, and its kept layers keep their output width."""
    try:
        cost = count_cost(model, input_shape, real_forward=True)
    except Exception as error:
        raise PruneUnsupported(f"the pruned model does not run: {first_line(error, with_type=True)}") from None
    for layer, width in zip(kept, widths):
        if output_width(layer) != width:
            raise PruneUnsupported(f"pruning changed a kept layer's output width from {width} to {output_width(layer)}")
    return cost


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

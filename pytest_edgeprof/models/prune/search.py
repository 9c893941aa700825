"""A pruning plan (how many channels each group loses): its FLOPs estimated without pruning or running
anything, the plan searched for a FLOPs target, and applied to the real model once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

from pytest_edgeprof.errors import first_line
from pytest_edgeprof.measure.flops import ModelCost
from pytest_edgeprof.models.prune import attention
from pytest_edgeprof.models.prune.groups import Group
from pytest_edgeprof.models.prune.targets import PruneUnsupported


class FlopsEstimator:
    """FLOPs of a plan (channels removed per group), without pruning or running anything."""

    def __init__(self, model: nn.Module, cost: ModelCost, groups: list[Group]) -> None:
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


def _uniform_plan(groups: list[Group], ratio: float) -> list[int]:
    """torch-pruning's local pruning at one channel ratio: n - int(n * (1 - ratio)) channels per group."""
    return [min(g.size - 1, g.size - int(g.size * (1 - ratio))) for g in groups]


def search_plan(estimator: FlopsEstimator, target: float, tolerance: float) -> list[int]:
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


def _refine(estimator: FlopsEstimator, plan: list[int], target: float, good_enough: float = 0.001) -> list[int]:
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


def apply_plan(graph: Any, groups: list[Group], plan: list[int]) -> list[list]:
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
        raise PruneUnsupported(f"torch-pruning failed on the model: {first_line(error, with_type=True)}") from None
    return [[name, bool(out), [int(i) for i in idxs]] for name, out, idxs in graph.pruning_history()]

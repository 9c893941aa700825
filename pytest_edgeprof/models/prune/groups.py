"""The channel groups structured pruning removes channels from: which layers keep their output width
(per task, as ``plan.py``'s docstring says), torch-pruning's dependency graph, and each group's channels
ranked by importance with what removing k of them does to each layer."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.measure.flops import input_dtype, meta_copy
from pytest_edgeprof.models.prune import attention
from pytest_edgeprof.models.prune.targets import PruneUnsupported
from pytest_edgeprof.models.zoo import model_input, takes_image_list
from pytest_edgeprof.shared_options import shape_text

DETECTION_HEADS = ("head", "rpn", "roi_heads")
DETECTION_OUTPUTS = ("cls_logits", "bbox_pred", "bbox_reg", "bbox_ctrness", "cls_score")  # torchvision's names


def kept_layers(model: nn.Module, input_shape: tuple[int, int, int]) -> list[nn.Module]:
    """The layers whose output width pruning keeps (``plan.py``'s docstring says which, per task)."""
    if takes_image_list(model):
        return _detector_outputs(model)
    called, output = _meta_run(model, input_shape)
    if isinstance(output, dict) and isinstance(output.get("out"), torch.Tensor):  # torchvision's segmenters
        classes = output["out"].shape[1]
        return [model.get_submodule(name) for name in dict.fromkeys(called) if output_width(model.get_submodule(name)) == classes]
    if not isinstance(output, torch.Tensor):
        raise PruneUnsupported("the model returns neither a tensor nor a segmenter's masks nor a detector's boxes")
    return [model.get_submodule(called[-1])]


def _detector_outputs(model: nn.Module) -> list[nn.Module]:
    """A detector's heads' output layers and its FPN's convolutions."""
    layers = (nn.modules.conv._ConvNd, nn.Linear)
    fpn = getattr(model.get_submodule("backbone"), "fpn", None)
    kept: list[nn.Module] = [m for m in fpn.modules() if isinstance(m, layers)] if isinstance(fpn, nn.Module) else []
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
        raise PruneUnsupported(f"the model does not run at input {shape_text(input_shape)}: {first_line(error, with_type=True)}") from None
    finally:
        for handle in handles:
            handle.remove()
    if not called:
        raise PruneUnsupported("the model has no convolution or linear layer to prune")
    return called, output


def dependency_graph(model: nn.Module, input_shape: tuple[int, int, int], ignored: list[nn.Module]) -> Any:
    import torch_pruning as tp

    device = next(model.parameters()).device
    example = model_input(model, 1, input_shape, str(device))
    try:
        with torch.enable_grad(), attention.traceable(model):
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    except Exception as error:
        raise PruneUnsupported(f"torch-pruning cannot trace the model: {first_line(error, with_type=True)}") from None
    graph.edgeprof_ignored = list(ignored)
    graph.edgeprof_attention = attention.kept_attention(model)
    graph.edgeprof_heads = attention.head_counts(model)
    return graph


def beside_the_mlps(model: nn.Module) -> list[nn.Module]:
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


def accumulate_gradients(model: nn.Module, example_data: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
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


def clear_gradients(model: nn.Module) -> None:
    for param in model.parameters():
        param.grad = None


@dataclass
class Group:
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


def rank_groups(graph: Any, method: str) -> list[Group]:
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
            raise PruneUnsupported(f"ranking the channels ({method}) failed: {first_line(error, with_type=True)}") from None
        if scores is None or len(scores) % chunks:
            continue
        size = len(scores) // chunks
        scores = scores.view(chunks, size).mean(dim=0) if chunks > 1 else scores
        order = torch.argsort(scores.float().cpu(), stable=True).tolist()
        rank = [0] * size
        for position, channel in enumerate(order):
            rank[channel] = position
        groups.append(
            Group(
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


def output_width(layer: nn.Module) -> int:
    # not only convolutions name their width out_channels (torchvision's Conv2dNormActivation does too)
    return layer.out_features if isinstance(layer, nn.Linear) else cast(int, layer.out_channels)

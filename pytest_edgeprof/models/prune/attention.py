"""Attention in structured pruning: which attention is cut, how its heads stay consistent, what it costs.

Two kinds of attention are cut, both the way torch-pruning cuts ViT: the width shared by the residual
stream and the attention (the embedding width) loses the same positions in every head, so ``num_heads``
stays and each head gets narrower, and the attention still computes what it did on the channels kept.

- ``nn.MultiheadAttention`` (torchvision's ViT): torch-pruning's own MultiheadAttention pruner; the
  model's ``hidden_dim``, which its forward reads, is set to the new width afterwards (:func:`finish`).
- torchvision's Swin (``ShiftedWindowAttention``, ``PatchMerging``): torch-pruning cannot trace the
  window shifts (its own torchvision example skips Swin as stuck), and maps the patch merging's strided
  slices as if they were channel slices. While the graph is traced (:func:`traceable`) both run stand-in
  forwards with the real ones' channel dependencies: q, k and v share their indices with the input
  (the real forward derives the head width from the input's width) and the projection reads them; the
  merging reads four copies of its input's channels side by side. The real forwards run otherwise.

Any other attention (MaxViT's, Swin V2's) keeps its width: only the MLPs' hidden layers are pruned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from pytest_edgeprof.measure.flops import LayerCost


def _swin() -> tuple[type, type]:
    from torchvision.models.swin_transformer import PatchMerging, ShiftedWindowAttention

    return ShiftedWindowAttention, PatchMerging


def is_attention(module: nn.Module) -> bool:
    # torchvision's Swin and MaxViT write attention with plain Linear layers in classes named so
    # (ShiftedWindowAttention, ShiftedWindowAttentionV2, RelativePositionalMultiHeadAttention); MaxViT's
    # PartitionAttentionLayer holds an attention and an MLP, and is not one
    return isinstance(module, nn.MultiheadAttention) or re.search(r"Attention(V\d+)?$", type(module).__name__) is not None


def _is_cut(module: nn.Module) -> bool:
    return type(module) in (nn.MultiheadAttention, _swin()[0])


def cuts_attention(model: nn.Module) -> bool:
    """Whether the model has attention and every attention of it is one this module cuts."""
    attention = [m for m in model.modules() if is_attention(m)]
    return bool(attention) and all(_is_cut(m) for m in attention)


def kept_attention(model: nn.Module) -> set[nn.Module]:
    """The attention modules (and their parts) that keep their width: all of them unless all are cut."""
    if cuts_attention(model):
        return set()
    return {part for module in model.modules() if is_attention(module) for part in module.modules()}


def head_counts(model: nn.Module) -> dict[nn.Module, int]:
    """The layers whose channels come in heads, and how many: a group holding one removes the same
    positions from every head."""
    if not cuts_attention(model):
        return {}
    counts: dict[nn.Module, int] = {}
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            counts[module] = module.num_heads
        elif _is_cut(module):
            counts.update({module.qkv: module.num_heads, module.proj: module.num_heads})
    return counts


@contextmanager
def traceable(model: nn.Module) -> Iterator[None]:
    """The stand-in forwards of the module's docstring, for as long as torch-pruning traces ``model``."""
    attention, merging = _swin()
    if not any(type(m) is attention for m in model.modules()):
        yield
        return
    real = attention.forward, merging.forward
    attention.forward, merging.forward = _attention_stand_in, _merging_stand_in
    try:
        yield
    finally:
        attention.forward, merging.forward = real


def _attention_stand_in(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    q, k, v = self.qkv(x).chunk(3, dim=-1)
    return self.proj(q + k + v + x)


def _merging_stand_in(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return self.reduction(self.norm(torch.cat([x * 1, x * 1, x * 1, x * 1], dim=-1)))  # * 1: four inputs, not one


def finish(model: nn.Module) -> None:
    """What the forward reads besides the layers' shapes, set to the pruned width."""
    from torchvision.models.vision_transformer import VisionTransformer

    if isinstance(model, VisionTransformer):
        model.hidden_dim = model.conv_proj.out_channels


def cost_terms(model: nn.Module, layer: LayerCost) -> tuple[str, int, int, int] | None:
    """For a cut attention's own FLOPs: (the layer whose output channels say how many of its width go,
    its width, the projections' FLOPs, the rest's). The projections scale with the kept width squared
    (input and output are both that width), the attention's matrix products with it once. None for any
    other layer."""
    module = model.get_submodule(layer.name) if layer.name else model
    if not (_is_cut(module) and cuts_attention(model)):
        return None
    if isinstance(module, nn.MultiheadAttention):
        width, tokens, width_layer = module.embed_dim, math.prod(layer.output_shape[:-1]), layer.name
    else:  # the windows pad the feature map to a multiple of the window size
        width, width_layer = module.proj.out_features, f"{layer.name}.proj"
        batch, height, breadth = layer.output_shape[:3]
        window_h, window_w = module.window_size
        tokens = batch * math.ceil(height / window_h) * window_h * math.ceil(breadth / window_w) * window_w
    projections = min(layer.flops, 2 * tokens * 4 * width * width)  # q, k, v in, and the projection out
    return width_layer, width, projections, layer.flops - projections

"""Attention in structured pruning: which attention is cut, how its heads stay consistent, what it costs.

Attention is cut the way torch-pruning cuts ViT: the width shared by the residual stream and the
attention (the embedding width) loses the same positions in every head, so the number of heads stays
and each head gets narrower, and the attention computes what it did on the channels kept.

- ``nn.MultiheadAttention`` (torchvision's ViT): torch-pruning's own MultiheadAttention pruner; the
  model's ``hidden_dim``, which its forward reads, is set to the new width afterwards (:func:`finish`).
- torchvision's Swin (``ShiftedWindowAttention``, ``PatchMerging``) and MaxViT
  (``RelativePositionalMultiHeadAttention``, ``PartitionAttentionLayer``): torch-pruning cannot trace
  the window shifts and partitions (its own torchvision example skips Swin as stuck), and maps a strided
  spatial slice or reshape as if it were a channel one. While the graph is traced (:func:`traceable`)
  these run stand-in forwards with the real ones' channel dependencies: q, k and v share their indices
  with the input (the real forwards take the head width from the input's width) and the projection
  reads them; the patch merging reads four copies of its input's channels side by side; the partition
  layer runs its attention and MLP on the feature map's positions as one sequence. The real forwards
  run otherwise; MaxViT's ``head_dim`` is set to the new head width afterwards.

Any other attention (Swin V2's, a user's) keeps its width: such a model is pruned in its MLPs' hidden
layers only.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from pytest_edgeprof.measure.flops import LayerCost

if TYPE_CHECKING:  # torchvision is imported where it is used, not with this module
    from torchvision.models.maxvit import PartitionAttentionLayer
    from torchvision.models.swin_transformer import PatchMerging


@dataclass(frozen=True)
class _Written:
    """An attention written with Linear layers whose forward takes the head width from its input's."""

    qkv: str  # the attribute holding the Linear that makes q, k and v
    projection: str  # the Linear that reads the heads back into the stream
    heads: str  # the attribute holding the number of heads
    windowed: bool  # the feature map is padded to whole windows (Swin)
    inline: bool  # the forward applies the Linears' weights itself, so their FLOPs are the attention's own


@functools.cache  # asked per module while a graph is traced and a plan is costed
def _written() -> dict[type[nn.Module], _Written]:
    from torchvision.models.maxvit import RelativePositionalMultiHeadAttention
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    return {
        ShiftedWindowAttention: _Written("qkv", "proj", "num_heads", windowed=True, inline=True),
        RelativePositionalMultiHeadAttention: _Written("to_qkv", "merge", "n_heads", windowed=False, inline=False),
    }


def is_attention(module: nn.Module) -> bool:
    # torchvision's Swin and MaxViT write attention with plain Linear layers in classes named so
    # (ShiftedWindowAttention, ShiftedWindowAttentionV2, RelativePositionalMultiHeadAttention); MaxViT's
    # PartitionAttentionLayer holds an attention and an MLP, and is not one
    return isinstance(module, nn.MultiheadAttention) or re.search(r"Attention(V\d+)?$", type(module).__name__) is not None


def _is_cut(module: nn.Module) -> bool:
    return type(module) is nn.MultiheadAttention or type(module) in _written()


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
    written, counts = _written(), dict[nn.Module, int]()
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            counts[module] = module.num_heads
        elif type(module) in written:
            kind = written[type(module)]
            heads = getattr(module, kind.heads)
            counts.update({getattr(module, kind.qkv): heads, getattr(module, kind.projection): heads})
    return counts


@contextmanager
def traceable(model: nn.Module) -> Iterator[None]:
    """The stand-in forwards of the module's docstring, for as long as torch-pruning traces ``model``."""
    from torchvision.models.maxvit import PartitionAttentionLayer
    from torchvision.models.swin_transformer import PatchMerging

    stand_ins: dict[type[nn.Module], Callable[..., torch.Tensor]] = dict.fromkeys(_written(), _attention_stand_in)
    stand_ins.update({PatchMerging: _merging_stand_in, PartitionAttentionLayer: _partition_stand_in})
    present = {kind: stand_in for kind, stand_in in stand_ins.items() if any(type(m) is kind for m in model.modules())}
    real = {kind: kind.forward for kind in present}
    try:
        for kind, stand_in in present.items():
            kind.forward = stand_in
        yield
    finally:
        for kind, forward in real.items():
            kind.forward = forward


def _attention_stand_in(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    kind = _written()[type(self)]
    q, k, v = getattr(self, kind.qkv)(x).chunk(3, dim=-1)
    return getattr(self, kind.projection)(q + k + v + x)


def _merging_stand_in(self: PatchMerging, x: torch.Tensor) -> torch.Tensor:
    return self.reduction(self.norm(torch.cat([x * 1, x * 1, x * 1, x * 1], dim=-1)))  # * 1: four inputs, not one


def _partition_stand_in(self: PartitionAttentionLayer, x: torch.Tensor) -> torch.Tensor:
    sequence = x.flatten(2).transpose(1, 2).unsqueeze(1)  # [B, 1, H*W, C], as the partitions are [B, G, P, C]
    sequence = sequence + self.attn_layer(sequence)
    sequence = sequence + self.mlp_layer(sequence)
    return sequence.squeeze(1).transpose(1, 2).reshape(x.shape)


def finish(model: nn.Module) -> None:
    """What the forwards read besides the layers' shapes, set to the pruned widths."""
    from torchvision.models.maxvit import RelativePositionalMultiHeadAttention
    from torchvision.models.vision_transformer import VisionTransformer

    if isinstance(model, VisionTransformer):
        model.hidden_dim = model.conv_proj.out_channels
    for module in model.modules():
        if isinstance(module, RelativePositionalMultiHeadAttention):
            module.head_dim = module.merge.in_features // module.n_heads


def cost_terms(module: nn.Module, layer: LayerCost) -> tuple[str, int, int, int] | None:
    """For the own FLOPs of an attention of a model whose attention is cut (``layer`` its cost):
    (the layer whose output channels say how many of its width go,
    its width, the projections' FLOPs, the rest's). The projections scale with the kept width squared
    (input and output are both that width), the attention's matrix products with it once; projections
    called as Linear modules are layers of their own. None for any other module."""
    if not _is_cut(module):
        return None
    tokens, inline = math.prod(layer.output_shape[:-1]), True
    if isinstance(module, nn.MultiheadAttention):
        width, width_layer = module.embed_dim, layer.name
    else:
        kind = _written()[type(module)]
        width_layer, inline = f"{layer.name}.{kind.projection}", kind.inline
        width = getattr(module, kind.projection).out_features
        if kind.windowed:  # the feature map is padded to whole windows: [B, H, W, C]
            batch, height, breadth = layer.output_shape[:3]
            window_h, window_w = cast("list[int]", module.window_size)  # a Swin attention's [height, width]
            tokens = batch * math.ceil(height / window_h) * window_h * math.ceil(breadth / window_w) * window_w
    projections = min(layer.flops, 2 * tokens * 4 * width * width) if inline else 0  # q, k, v in, the projection out
    return width_layer, width, projections, layer.flops - projections

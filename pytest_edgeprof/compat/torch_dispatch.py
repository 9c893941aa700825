"""Everything edgeprof takes from torch's private dispatch API: every aten op a forward pass runs.

The roofline (measure/roofline.py) needs each kernel of a forward pass with its tensors, which only
a ``TorchDispatchMode`` (``torch.utils._python_dispatch``, private) sees: below autograd, after the
composite ops are decomposed, one call per kernel. torch's own FLOP counter is built on it.

Checked on torch 2.14.1, the version pinned in pyproject.toml. tests/test_compat_torch_dispatch.py
pins what is used here: on a torch that changed it, that test fails instead of the roofline
silently seeing no kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# (the op, its positional arguments, its keyword arguments, what it returned)
OpSeen = Callable[[torch._ops.OpOverload, tuple[Any, ...], dict[str, Any], Any], None]


class OpRecorder(TorchDispatchMode):
    """Inside ``with OpRecorder(seen):`` every aten op runs as usual and is then handed to ``seen``."""

    def __init__(self, seen: OpSeen) -> None:
        super().__init__()
        self._seen = seen

    def __torch_dispatch__(
        self,
        func: torch._ops.OpOverload,
        types: tuple[type, ...],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self._seen(func, args, kwargs, out)
        return out


def writes_in_place(op: torch._ops.OpOverload) -> bool:
    """The op writes into an input (``relu_``): a kernel, although its result aliases that input."""
    return any(arg.alias_info is not None and arg.alias_info.is_write for arg in op._schema.arguments)


def is_view(op: torch._ops.OpOverload) -> bool:
    """The op returns a view of an input (``view``, ``t``, ``expand``): no kernel runs."""
    return not writes_in_place(op) and any(ret.alias_info is not None for ret in op._schema.returns)

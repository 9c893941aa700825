"""Which network a cell measures: one identity that the cell key (the journal) and the variant cache share.

A torchvision model is named by its name, its weights (a file by its path, size and modification
time, since a user may overwrite it) and, for a pruned variant, how it was made: the target (in the
variant's name), the importance method and the data Taylor importance saw. A user's own module is
named by its class, its architecture as ``repr`` shows it and its parameters' names, shapes and
dtypes: two different networks under one test name get two identities, while the same network with
other random weights (which do not change latency, memory, energy or FLOPs) keeps its identity.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

# The torchvision models whose pruned variants have their attention heads cut (models/prune/attention.py
# decides it from the modules; this is the same set by name, for a key made before the model is built).
ATTENTION_CUT = re.compile(r"vit_[a-z]_\d+|swin_[tsb]|maxvit_t")


def weights_identity(weights: str | None) -> str:
    """``random``, a weights name (``DEFAULT``), or ``file:PATH:SIZE:MTIME`` for a state-dict file."""
    if weights is None or weights.lower() in ("none", "random"):
        return "random"
    path = Path(weights).expanduser()
    if path.is_file():  # a file the user may overwrite: its size and time say whether it changed
        stat = path.stat()
        return f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return weights.upper()


def model_identity(name: str, weights: str | None, variant: str = "base", method: str = "", data: str = "") -> dict[str, str]:
    """A torchvision model, its weights and, for a pruned variant, its method and the data it saw."""
    identity = {"model": name, "weights": weights_identity(weights), "variant": variant}
    if variant != "base":
        identity.update(prune_method=method, prune_data=data)
        if ATTENTION_CUT.fullmatch(name):  # made otherwise than before attention was cut
            identity.update(prune_attention="heads")
    return identity


def module_identity(module: Any) -> dict[str, str]:
    """A user's ``nn.Module``: its class, architecture and parameter layout (not the values); any other
    callable by its qualified name (it cannot be measured, but its failure is recorded under a key)."""
    kind = type(module)
    if not hasattr(module, "named_parameters"):
        name = getattr(module, "__qualname__", kind.__qualname__)
        return {"callable": f"{getattr(module, '__module__', kind.__module__)}.{name}"}
    layout = [(name, tuple(p.shape), str(p.dtype)) for name, p in module.named_parameters()]
    layout += [(name, tuple(b.shape), str(b.dtype)) for name, b in module.named_buffers()]
    text = f"{repr(module)}\n{layout}"
    return {"module": f"{kind.__module__}.{kind.__qualname__}", "architecture": hashlib.sha256(text.encode()).hexdigest()[:16]}

"""Which network a cell measures: one identity that the cell key (the journal) and the variant cache share.

A torchvision model is named by its name, its weights (a file by its path, size and modification
time, since a user may overwrite it) and, for a pruned variant, how it was made: the target (in the
variant's name), the importance method and the data Taylor importance saw. A user's own module is
named by its class, its architecture as ``repr`` shows it, its parameters' names, shapes and dtypes,
and the code of its classes and its submodules' (``forward`` and the methods it calls): two different
networks under one test name get two identities, and so does a network whose ``forward`` was edited,
while the same network with other random weights (which do not change latency, memory, energy or
FLOPs) keeps its identity.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path
from types import CodeType
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
    """A user's ``nn.Module``: its class, architecture, parameter layout (not the values) and code; any other
    callable by its qualified name (it cannot be measured, but its failure is recorded under a key)."""
    kind = type(module)
    if not hasattr(module, "named_parameters"):
        name = getattr(module, "__qualname__", kind.__qualname__)
        return {"callable": f"{getattr(module, '__module__', kind.__module__)}.{name}"}
    layout = [(name, tuple(p.shape), str(p.dtype)) for name, p in module.named_parameters()]
    layout += [(name, tuple(b.shape), str(b.dtype)) for name, b in module.named_buffers()]
    text = f"{repr(module)}\n{layout}"
    return {"module": f"{kind.__module__}.{kind.__qualname__}", "architecture": _digest(text),
            "code": _digest(code_text(module))}


def code_text(module: Any) -> str:
    """The methods of every class among the module and its submodules, and of their bases, as source (as
    compiled code where there is none, for a class made by ``exec`` or in a notebook). Torch's own classes
    are left out: their code comes with the torch version, and reading it would cost every cell."""
    classes = dict.fromkeys(base for sub in module.modules() for base in type(sub).__mro__ if _users(base))
    parts = []
    for cls in classes:
        for name, value in sorted(vars(cls).items()):
            function = getattr(value, "__func__", value)  # staticmethod, classmethod
            if inspect.isfunction(function):
                parts.append(f"{cls.__module__}.{cls.__qualname__}.{name}\n{_function_text(function)}")
    return "\n".join(parts)


def _users(cls: type) -> bool:
    return cls is not object and cls.__module__.split(".")[0] != "torch"


def _function_text(function: Any) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):  # no source file (exec, a notebook's cell since gone, a frozen module)
        return _compiled_text(function.__code__)


def _compiled_text(code: CodeType) -> str:
    """Bytecode, names and constants, nested functions' included: what the function does, without its source."""
    consts = [_compiled_text(c) if isinstance(c, CodeType) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{code.co_names}|{consts}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]

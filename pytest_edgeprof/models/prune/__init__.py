"""Structured pruning of a model to a FLOPs target (torch-pruning, DepGraph), and the variant cache.

- ``targets.py``: variant ids (``p50``), the accepted targets and methods, parsing ``--prune``, and
  :class:`PruneUnsupported` (a model that cannot be pruned to a target).
- ``plan.py``: :func:`prune_to_flops`: rank channel groups (``groups.py``), search a per-group plan
  against a FLOPs estimate (``search.py``), prune once and verify the exact FLOPs (:class:`PruneResult`).
- ``cache.py``: :func:`pruned_model`: a torchvision model by name, pruned once and then loaded from a
  file that replays its pruning history (:func:`save_variant`, :func:`load_variant`).

The names of ``targets.py`` need no torch; those of ``plan.py`` and ``cache.py`` (torch and
torch-pruning) are imported on first use, so parsing ``--prune`` or ``--variant`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from pytest_edgeprof.models.prune.targets import (
    METHODS,
    PruneUnsupported,
    check_method,
    parse_cache_dir,
    parse_prune_target,
    parse_prune_targets,
    variant_name,
    variant_target,
)
from pytest_edgeprof.paths import default_cache_dir  # the variant cache's default folder

_PLAN = ("DEFAULT_TOLERANCE", "PruneResult", "prune_to_flops")
_CACHE = ("PruneCacheWarning", "load_variant", "pruned_model", "save_variant")
_LAZY = {**dict.fromkeys(_PLAN, "plan"), **dict.fromkeys(_CACHE, "cache")}

__all__ = [
    "DEFAULT_TOLERANCE",
    "METHODS",
    "PruneCacheWarning",
    "PruneResult",
    "PruneUnsupported",
    "check_method",
    "default_cache_dir",
    "load_variant",
    "parse_cache_dir",
    "parse_prune_target",
    "parse_prune_targets",
    "prune_to_flops",
    "pruned_model",
    "save_variant",
    "variant_name",
    "variant_target",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

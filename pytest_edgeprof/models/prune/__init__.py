"""Structured pruning of a model to a FLOPs target (torch-pruning, DepGraph), and the variant cache.

- ``targets.py``: variant ids (``p50``), the accepted targets and methods, parsing ``--prune``.
- ``plan.py``: :func:`prune_to_flops`: rank channel groups, search a per-group plan against a FLOPs
  estimate, prune once and verify the exact FLOPs (:class:`PruneResult`, :class:`PruneUnsupported`).
- ``cache.py``: :func:`pruned_model`: a torchvision model by name, pruned once and then loaded from a
  file that replays its pruning history (:func:`save_variant`, :func:`load_variant`).
"""

from pytest_edgeprof.models.prune.cache import (
    PruneCacheWarning,
    default_cache_dir,
    load_variant,
    parse_cache_dir,
    pruned_model,
    save_variant,
)
from pytest_edgeprof.models.prune.plan import DEFAULT_TOLERANCE, PruneResult, PruneUnsupported, prune_to_flops
from pytest_edgeprof.models.prune.targets import (
    METHODS,
    check_method,
    parse_prune_target,
    parse_prune_targets,
    variant_name,
    variant_target,
)

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

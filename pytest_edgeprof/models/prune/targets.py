"""What a pruned variant is called, which targets and methods are accepted, and where variants are cached.

A target is the fraction of a model's FLOPs to remove, from ``MIN_TARGET`` to ``MAX_TARGET``; its
variant id is ``p<percent>`` (0.5 -> ``p50``), and ``base`` is the unpruned model. The ``--prune``
and ``--prune-method`` options and the ``edgeprof prune`` command parse with these functions, which
import no torch (the plugin checks its options with them in every pytest run).
"""

from __future__ import annotations

from pathlib import Path

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.paths import output_folder

METHODS = ("magnitude", "taylor")
MIN_TARGET, MAX_TARGET = 0.05, 0.8


class PruneUnsupported(Exception):
    """This model cannot be pruned to this target; the message says why (the plugin skips the cell)."""


def variant_name(target: float) -> str:
    """The variant id of a target: 0.5 -> "p50", 0.25 -> "p25", 0.05 -> "p5", 0.125 -> "p12.5"."""
    return f"p{round(target * 100, 4):g}"


def variant_target(variant: str) -> float | None:
    """The target a variant id names: "p50" -> 0.5, "p12.5" -> 0.125; "base" -> None."""
    if variant == "base":
        return None
    try:
        if not variant.startswith("p"):
            raise ValueError(variant)
        return parse_prune_target(repr(round(float(variant[1:]) / 100, 6)))
    except (ValueError, UsageError):
        raise UsageError(f"variant {variant!r} is not 'base' or p<percent of FLOPs removed> like p50") from None


def parse_prune_target(text: str) -> float:
    """One target: a fraction of FLOPs to remove, from 0.05 to 0.8 (``"0.5"``)."""
    accepted = f"expected a fraction of FLOPs to remove from {MIN_TARGET} to {MAX_TARGET}, e.g. 0.5"
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{str(text).strip()!r} is not a number; {accepted}") from None
    if not MIN_TARGET <= value <= MAX_TARGET:
        hint = f" (a percent? use {value / 100:g})" if 1 < value <= 100 * MAX_TARGET else ""
        raise UsageError(f"{str(text).strip()} is out of range{hint}; {accepted}")
    return value


def parse_prune_targets(text: str) -> tuple[float, ...]:
    """Parse ``--prune``: a comma list of targets (``"0.25,0.5"``), each from 0.05 to 0.8; repeats dropped."""
    items = [item.strip() for item in str(text).split(",")]
    targets: list[float] = []
    for item in items:
        try:
            value = parse_prune_target(item)
        except UsageError as error:
            raise UsageError(f"--prune {text!r}: {error}") from None
        if value not in targets:
            targets.append(value)
    return tuple(targets)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UsageError(f"pruning method {method!r} is not known; accepted: {', '.join(METHODS)}")
    return method


def parse_cache_dir(text: str, option: str = "--prune-cache") -> Path:
    return output_folder(text, option, "the pruned-variant cache")

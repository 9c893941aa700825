"""Models by name: torchvision's classification models, the weights policy, example inputs."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

import torchvision

from .errors import UsageError


@lru_cache(maxsize=None)
def classification_model_names() -> tuple[str, ...]:
    """Every torchvision classification model name (no detection, segmentation, video, ...)."""
    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def resolve_model_name(name: str) -> str:
    """Return ``name`` if it is a torchvision classification model, else raise with the closest names."""
    names = classification_model_names()
    cleaned = name.strip()
    if cleaned in names:
        return cleaned
    if cleaned.lower() in names:
        return cleaned.lower()
    close = difflib.get_close_matches(cleaned.lower(), names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()"
    raise UsageError(f"unknown model {name!r}: not a torchvision classification model; {hint}")


_SHAPE = re.compile(r"([0-9]+)(?:[xX]([0-9]+))?")
_POSITIVE_INT = re.compile(r"[0-9]+")


def parse_shape(text: str) -> tuple[int, int, int]:
    """Parse an input size: ``"224"`` is (3, 224, 224), ``"224x160"`` is (3, 224, 160), height x width."""
    match = _SHAPE.fullmatch(str(text).strip())
    height = int(match[1]) if match else 0
    width = int(match[2] or match[1]) if match else 0
    if height < 1 or width < 1:
        raise UsageError(f"bad input shape {text!r}: expected a size like 224 or HxW like 224x160 (positive integers)")
    return (3, height, width)


def parse_batch_size(text: str) -> int:
    """Parse a batch size: a positive integer such as ``"8"``."""
    cleaned = str(text).strip()
    if not _POSITIVE_INT.fullmatch(cleaned) or int(cleaned) < 1:
        raise UsageError(f"bad batch size {text!r}: expected a positive integer like 1 or 32")
    return int(cleaned)

"""Models by name: torchvision's classification models, the weights policy, example inputs."""

from __future__ import annotations

import difflib
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

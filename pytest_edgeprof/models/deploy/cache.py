"""The deployed-model cache: one file per model, precision and input shape, named by a digest of
everything that made it (the network and its weights' values, the calibration images, the library
versions), written whole or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def cached_file(cache_dir: Path, name: str, input_shape: tuple[int, ...], suffix: str, made_from: dict[str, Any]) -> Path:
    """``resnet50-int8-3x224x224-<digest>.onnx``: readable, and different whenever ``made_from`` is."""
    digest = hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / f"{name}-{'x'.join(map(str, input_shape))}-{digest}{suffix}"


def weights_digest(module: Any) -> str:
    """A digest of the module's parameter and buffer values: a retrained model is another file, whatever
    its name (a user's module is named by its architecture alone)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def write_once(path: Path, make: Callable[[Path], Path]) -> None:
    """``make(scratch folder)`` returns the file it made there, which becomes ``path``; a run killed
    halfway leaves no torn file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        os.replace(make(Path(scratch)), path)

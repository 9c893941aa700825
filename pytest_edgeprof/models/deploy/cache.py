"""The deployed-model cache: one file per model, precision and input shape, named by a digest of
everything that made it (the network, the calibration images, the library versions), written whole or
not at all."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cached_file(cache_dir: Path, name: str, input_shape: tuple[int, ...], suffix: str, made_from: dict[str, Any]) -> Path:
    """``resnet50-int8-3x224x224-<digest>.onnx``: readable, and different whenever ``made_from`` is."""
    digest = hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / f"{name}-{'x'.join(map(str, input_shape))}-{digest}{suffix}"


def write_once(path: Path, make: Callable[[Path], Path]) -> None:
    """``make(scratch folder)`` returns the file it made there, which becomes ``path``; a run killed
    halfway leaves no torn file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        os.replace(make(Path(scratch)), path)

"""The deployed-model cache: one file per model, precision and input shape, named by a digest of
everything that made it (the network and its weights' values, the calibration images, the library
versions), written whole or not at all.

A file is read back only when it verifies against the keyed digest recorded when it was written
(``cache_integrity``): a ``.pt2`` archive is unpickled by ``torch.export.load``, so a crafted one would
run code, and a cut-short ``.onnx`` would read as a model ONNX Runtime cannot load. One that fails is
named in a ``CacheWarning``, deleted and made again. A cache that cannot be written is a UsageError:
the run stops with one line rather than skip the cell as if the model were unsupported.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pytest_edgeprof.cache_integrity import check_cache_folder, commit, read_verified
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.shared_options import shape_text

WHAT = "deployed-model cache file"
WHERE = "XDG_CACHE_HOME sets it"  # the default folder is $XDG_CACHE_HOME/pytest-edgeprof/deployed


def cached_file(cache_dir: Path, name: str, input_shape: tuple[int, ...], suffix: str, made_from: dict[str, Any]) -> Path:
    """``resnet50-int8-3x224x224-<digest>.onnx``: readable, and different whenever ``made_from`` is."""
    digest = hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / f"{name}-{shape_text(input_shape)}-{digest}{suffix}"


def weights_digest(module: Any) -> str:
    """A digest of the module's parameter and buffer values: a retrained model is another file, whatever
    its name (a user's module is named by its architecture alone)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def check_cache(cache_dir: Path) -> None:
    """Before a model is deployed: the folder can hold the cache; else one UsageError line."""
    check_cache_folder(cache_dir, "the deployed-model cache", WHERE)


def read_cached(path: Path) -> bytes | None:
    """The cached file's bytes when it is the file written there; None when there is none or it failed
    (then it is named in a CacheWarning and deleted)."""
    return read_verified(path, WHAT)


def write_once(path: Path, make: Callable[[Path], Path]) -> bytes:
    """``make(scratch folder)`` returns the file it made there, which becomes ``path``, its digest
    recorded; its bytes. A run killed halfway leaves no torn file behind; a folder that cannot take
    the file (a full disk, no permission) is one UsageError line."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:  # mode 0700: only this user enters it
            return commit(make(Path(scratch)), path)
    except OSError as exc:
        raise UsageError(f"cannot write the deployed-model cache {folder}: {exc.strerror or exc}; free space there "
                         f"or give another folder ({WHERE})") from None

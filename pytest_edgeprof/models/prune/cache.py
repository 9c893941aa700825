"""The pruned-variant cache: a torchvision model pruned once, then loaded from a file.

A variant is one file (:func:`save_variant`) holding the pruning history (root layer, direction,
channel indices), the FLOPs/params figures and the state dict, as plain dicts, lists, numbers and
tensors. Loading (:func:`load_variant`) reads it with ``torch.load(weights_only=True)``, builds the
base architecture on the meta device, replays the history with torch-pruning and assigns the state
dict, so nothing in the file is unpickled as an arbitrary object. Entries are named
``<model>-<variant>-<method>-<key>.pt``; the key hashes model, weights, target, method, example data
and the torch / torchvision / torch-pruning versions. As every edgeprof cache, an entry is read only
where it verifies against the keyed digest recorded when it was written (``cache_integrity``): a
safe loader is one guard, and a file this user's edgeprof did not write there is not loaded at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from pytest_edgeprof.cache_integrity import CacheWarning, discard, read_verified, write_verified, write_whole
from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.models.identity import model_identity
from pytest_edgeprof.models.prune import attention
from pytest_edgeprof.models.prune.plan import DEFAULT_TOLERANCE, PRUNE_STAGES, PruneResult, _prune, _stages
from pytest_edgeprof.models.prune.targets import check_method, parse_prune_target, variant_name
from pytest_edgeprof.models.zoo import build_model, model_input, reference_input_shape, resolve_model_name, task_of
from pytest_edgeprof.paths import default_cache_dir

VARIANT_FORMAT = 1  # of the files save_variant writes
WHAT = "cache entry"


class PruneCacheWarning(CacheWarning):
    """A cache entry could not be read or did not verify, and is being rebuilt."""


def pruned_model(
    model_name: str,
    target: float,
    *,
    weights: str | None = None,
    method: str = "magnitude",
    cache_dir: Path | None = None,
    progress: bool = False,
    example_data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    data_key: str = "",
    use_cache: bool = True,
) -> PruneResult:
    """A torchvision model with ``target`` of its FLOPs removed at its own input size, on the CPU in eval mode.

    Loaded from ``cache_dir`` (default :func:`default_cache_dir`) when it was pruned before with the
    same model, weights, target, method (and ``data_key``, which names ``example_data`` for Taylor)
    and torch / torchvision / torch-pruning versions; otherwise built with :func:`zoo.build_model`,
    pruned in place and written there. An entry that cannot be read is named in a
    :class:`PruneCacheWarning`, deleted and rebuilt.
    """
    name = resolve_model_name(model_name)
    check_method(method)
    parse_prune_target(str(target))  # the range --prune accepts
    shape = reference_input_shape(name)
    key = _cache_key(name, weights, target, method, data_key, shape)
    entry = cache_entry_path(name, target, method, key, cache_dir)
    cached = read_verified(entry, WHAT, PruneCacheWarning) if use_cache else None
    if cached is not None:
        try:
            return load_variant(io.BytesIO(cached), expected_key=key)
        except Exception as error:  # written by this user's edgeprof, yet unloadable: say which file, rebuild it
            discard(entry, WHAT, first_line(error, with_type=True), PruneCacheWarning)
    started = time.perf_counter()
    with _stages(progress, f"pruning {name} to {variant_name(target)}", len(PRUNE_STAGES) + 2) as stage:
        stage("building the model")
        model = build_model(name, weights, "cpu")
        result = _prune(model, target, shape, method, example_data, DEFAULT_TOLERANCE, stage)
        result = replace(result, model_name=name, cache_key=key)
        if use_cache:
            stage("saving to the cache")
            _write_entry(result, entry)
    return replace(result, seconds=time.perf_counter() - started)


def cache_entry_path(name: str, target: float, method: str, key: str, cache_dir: Path | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()).expanduser() / f"{name}-{variant_name(target)}-{method}-{key[:16]}.pt"


def _cache_key(name: str, weights: str | None, target: float, method: str, data_key: str, shape: tuple) -> str:
    """The variant's identity (the one the cell key uses) and what else decides the file: the target
    to its 6th decimal, the input the FLOPs were counted at, and the library versions."""
    identity = {
        **model_identity(name, weights, variant_name(target), method, data_key),
        "format": VARIANT_FORMAT,
        "target": round(target, 6),
        "input_shape": list(shape),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "torch_pruning": version("torch-pruning"),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _write_entry(result: PruneResult, entry: Path) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        write_verified(entry, _variant_bytes(result))
    except OSError as exc:
        raise UsageError(f"cannot write the variant cache {entry.parent}: {exc.strerror or exc}; free space there "
                         "or give another folder (--prune-cache, --cache-dir)") from None


def save_variant(result: PruneResult, path: Path) -> Path:
    """Write a pruned torchvision model as its pruning history plus its state dict, atomically.

    The file holds only dicts, lists, strings, numbers and tensors, so :func:`load_variant` reads it
    with ``torch.load(weights_only=True)``.
    """
    data = _variant_bytes(result)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, data)
    return path


def _variant_bytes(result: PruneResult) -> bytes:
    """The variant file's bytes: plain values and tensors only."""
    if not result.model_name:
        raise UsageError("only a pruned torchvision model (from pruned_model or load_variant) can be saved")
    record = {
        "format": VARIANT_FORMAT,
        "key": result.cache_key,
        "model": result.model_name,
        "target": result.target,
        "achieved": result.achieved,
        "method": result.method,
        "input_shape": list(result.input_shape),
        "params_before": result.params_before,
        "params_after": result.params_after,
        "flops_before": result.flops_before,
        "flops_after": result.flops_after,
        "history": [[str(name), bool(out), [int(i) for i in idxs]] for name, out, idxs in result.history],
        "state_dict": result.model.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(record, buffer)
    return buffer.getvalue()


def load_variant(path: Path | IO[bytes], expected_key: str | None = None) -> PruneResult:
    """Rebuild a variant written by :func:`save_variant` (a path, or its bytes as a file object): base
    architecture, replayed history, weights."""
    started = time.perf_counter()
    source = Path(path).expanduser() if isinstance(path, str | os.PathLike) else path
    record = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(record, dict) or record.get("format") != VARIANT_FORMAT:
        raise ValueError(f"not an edgeprof variant file of format {VARIANT_FORMAT}")
    if expected_key is not None and record.get("key") != expected_key:
        raise ValueError("the file describes another variant")
    name = resolve_model_name(str(record["model"]))
    channels, height, width = (int(d) for d in record["input_shape"])
    shape = (channels, height, width)
    history = [[str(n), bool(out), [int(i) for i in idxs]] for n, out, idxs in record["history"]]
    model = _skeleton(name)
    _replay_graph(model, shape).load_pruning_history(history)
    attention.finish(model)
    model.load_state_dict(record["state_dict"], strict=True, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise ValueError("the state dict does not hold every tensor of the model")
    return PruneResult(
        model=model.eval(),
        target=float(record["target"]),
        achieved=float(record["achieved"]),
        method=str(record["method"]),
        params_before=int(record["params_before"]),
        params_after=int(record["params_after"]),
        flops_before=int(record["flops_before"]),
        flops_after=int(record["flops_after"]),
        seconds=time.perf_counter() - started,
        from_cache=True,
        input_shape=shape,
        history=tuple(tuple(step) for step in history),
        model_name=name,
        cache_key=str(record.get("key", "")),
    )


def _skeleton(name: str) -> nn.Module:
    """The base architecture with no weights worth keeping: on meta tensors where the builder allows."""
    if task_of(name) == "detection":  # tracing a detector runs its NMS, which needs real values
        return build_model(name, None, "cpu")
    try:
        with torch.device("meta"):
            return build_model(name, None, "meta")
    except NotImplementedError:  # builders that compute with tensors (RegNet) need real ones
        return build_model(name, None, "cpu")


def _replay_graph(model: nn.Module, shape: tuple) -> Any:
    import torch_pruning as tp

    device = next(model.parameters()).device
    example = torch.empty((1, *shape), device=device) if device.type == "meta" else model_input(model, 1, shape)
    with torch.enable_grad(), attention.traceable(model):
        return tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)

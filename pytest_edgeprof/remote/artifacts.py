"""Artifacts made on the host, kept on the board by content.

Per cell the host exports what the board's runtime loads: ONNX at opset 13 by default (what TensorRT 8.2
and ONNX Runtime 1.11 on JetPack 4.6 accept), the cell's batch fixed, at its precision where that is an
ONNX matter (fp16: the module cast; int8: ONNX Runtime's QDQ quantization on the calibration images); a
TorchScript file for a board's torch. Each is cached on the host like any deployed model, and copied once
into a content-addressed folder on the board (``<sha256>.onnx``): a second run copies nothing that is
already there. A TensorRT engine is built and cached on the board by the worker, beside its ONNX file.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from pytest_edgeprof.axes import torch_dtype
from pytest_edgeprof.errors import DeployUnsupported, first_line
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.models.deploy.cache import cached_file, read_cached, weights_digest, write_once
from pytest_edgeprof.models.deploy.calibration import Calibration
from pytest_edgeprof.models.zoo import example_input
from pytest_edgeprof.remote.connection import SshConnection

DEFAULT_OPSET = 13
BOARD_CACHE = '"${XDG_CACHE_HOME:-$HOME/.cache}/pytest-edgeprof/board"'  # expanded by the board's shell


@dataclass(frozen=True)
class Artifact:
    data: bytes
    suffix: str  # ".onnx" or ".pt"
    quantization: str = ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def host_artifact(module: nn.Module, cell: Cell, identity: dict[str, str], *, kind: str, cache_dir: Path,
                  calibration: Calibration, opset: int = DEFAULT_OPSET) -> Artifact:
    """The cell's model as the board will load it (``kind``: onnx or torchscript), from the host's cache or made now."""
    example = example_input(cell.batch_size, cell.input_shape)
    made_from = {"identity": identity, "weights": weights_digest(module), "precision": cell.precision, "kind": kind,
                 "opset": opset, "batch": cell.batch_size, "torch": torch.__version__,
                 "calibration": calibration.identity() if cell.precision == "int8" else ""}
    suffix = ".onnx" if kind == "onnx" else ".pt"
    path = cached_file(cache_dir, f"remote-{cell.model}-{cell.precision}-b{cell.batch_size}", cell.input_shape, suffix,
                       made_from)
    quantization = f"onnxruntime quantize_static, QDQ; calibrated on {calibration.identity()}" if cell.precision == "int8" else ""

    def make(scratch: Path) -> Path:
        made = scratch / f"model{suffix}"
        if kind == "torchscript":
            _trace(module, example, torch_dtype(cell.precision), made)
            return made
        _export_onnx(module, example, torch_dtype(cell.precision) if cell.precision != "int8" else torch.float32, made, opset)
        if cell.precision != "int8":
            return made
        from pytest_edgeprof.models.deploy.onnx_runtime import _quantize

        return _quantize(made, calibration, cell.model, example, scratch)

    data = read_cached(path)
    return Artifact(data if data is not None else write_once(path, make), suffix, quantization)


def _export_onnx(module: nn.Module, example: torch.Tensor, dtype: torch.dtype, path: Path, opset: int) -> None:
    """The TorchScript-based exporter: it writes any opset from 7 up (the dynamo exporter starts at 18)."""
    cast = copy.deepcopy(module).eval().cpu().to(dtype)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(cast, (example.to(dtype),), str(path), opset_version=opset, dynamo=False,
                              input_names=["input"], output_names=["output"])
    except OSError:
        raise
    except Exception as exc:
        raise DeployUnsupported(f"torch.onnx.export cannot export it at opset {opset}: "
                                f"{first_line(exc, with_type=True, limit=200)}") from None


def _trace(module: nn.Module, example: torch.Tensor, dtype: torch.dtype, path: Path) -> None:
    cast = copy.deepcopy(module).eval().cpu().to(dtype)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.trace(cast, example.to(dtype)).save(str(path))
    except OSError:
        raise
    except Exception as exc:
        raise DeployUnsupported(f"torch.jit.trace cannot trace it: {first_line(exc, with_type=True, limit=200)}") from None


@dataclass
class BoardCache:
    """The board's content-addressed folder: what is there is never copied again."""

    connection: SshConnection
    root: str = ""  # resolved on first use (the board's $XDG_CACHE_HOME or ~/.cache)
    bytes_copied: int = 0
    files_copied: int = 0
    files_present: int = 0
    _known: set[str] = field(default_factory=set)

    def folder(self) -> str:
        if not self.root:
            self.root = self.connection.run(f"mkdir -p {BOARD_CACHE} && cd {BOARD_CACHE} && pwd").strip()
        return self.root

    def place(self, data: bytes, name: str) -> str:
        """The board's path of ``data`` stored as ``name``, copied only where the board does not hold these very
        bytes yet (its file's sha256 is checked on the board: a damaged or altered copy is copied again)."""
        path = f"{self.folder()}/{name}"
        if path in self._known:
            return path
        there = self.connection.run(f"sha256sum {shlex.quote(path)} 2>/dev/null || true").split()
        if there[:1] == [hashlib.sha256(data).hexdigest()]:
            self.files_present += 1
        else:
            self.connection.copy(data, path)
            self.bytes_copied += len(data)
            self.files_copied += 1
        self._known.add(path)
        return path

    def place_artifact(self, artifact: Artifact) -> str:
        return self.place(artifact.data, f"artifacts/{artifact.digest}{artifact.suffix}")

    def summary(self) -> str:
        return (f"copied {self.bytes_copied} bytes in {self.files_copied} file(s); "
                f"{self.files_present} already there")

"""The deployment axes: the precisions a cell's model runs at and the runtimes that run it, one entry each.

Beside the metric registry (``metrics.py``), this is the one place that says what a precision or a
runtime is: ``--precision`` and ``--runtime`` accept exactly these names and their help is written
from them, the grid checks the extras they need, ``models/deploy/support.py`` reads which device can
run which, the deployer imports each runtime's deployer by its dotted name, the cell key takes their
key parts, and ``measure/peak.py`` probes each precision's peak. Adding a runtime is one ``RUNTIMES``
entry and its deployer function; adding a precision is one ``PRECISIONS`` entry.

Importing it imports no torch: the plugin parses its options with it in every pytest run
(:func:`torch_dtype` imports torch when it is called).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_edgeprof.errors import UsageError

DEVICE_KINDS = ("cpu", "cuda")  # what support.py tells apart: a CUDA device, or the CPU


@dataclass(frozen=True)
class Extra:
    """A pip extra of pytest-edgeprof (``pyproject.toml``) and the modules it installs (probed, not imported)."""

    name: str
    modules: tuple[str, ...]

    def missing(self) -> list[str]:
        return [module for module in self.modules if importlib.util.find_spec(module) is None]


ONNX = Extra("onnx", ("onnxruntime", "onnx", "onnxscript"))  # the runtime, the format and the exporter's needs
INT8 = Extra("int8", ("torchao",))  # PT2E's quantizer, for int8 in PyTorch


@dataclass(frozen=True)
class Precision:
    """The numbers' type a deployed model computes in."""

    name: str  # as --precision takes it, the saved "precision" and the cell id show it
    dtype: str  # the torch dtype a module is cast to for it (int8: float32, quantized from there)
    bytes_per_element: int  # what one value of it moves (the roofline's bytes)
    note: str = ""  # said after its name in --precision's help
    # Its capability check: a CPU runs it usefully with any of these /proc/cpuinfo flags (() any CPU), a CUDA
    # device from this compute capability (None any); below, PyTorch emulates it, slower than float32.
    cpu_flags: tuple[str, ...] = ()
    cuda_capability: tuple[int, int] | None = None
    peak_key: str | None = None  # measure/peak.py's probe at this precision; None: the GEMM probe does not measure it
    calibrated: bool = False  # post-training quantization: its calibration images join the cell key

    def cpu_shortfall(self, flags: frozenset[str]) -> str | None:
        """Why a CPU with ``flags`` would only emulate it; None where it need not (or ``flags`` is empty: unknown)."""
        if not self.cpu_flags or not flags or flags.intersection(self.cpu_flags):
            return None
        return f"{self.name} on this CPU would be emulated: it has none of {', '.join(self.cpu_flags)} (/proc/cpuinfo)"

    def cuda_shortfall(self, capability: tuple[int, int], device: str) -> str | None:
        """Why CUDA ``device`` of compute ``capability`` would only emulate it; None where it need not."""
        needed = self.cuda_capability
        if needed is None or capability >= needed:
            return None
        return (f"{self.name} needs CUDA compute capability {needed[0]}.{needed[1]}; "
                f"{device} has {capability[0]}.{capability[1]}")


@dataclass(frozen=True)
class Runtime:
    """What runs a deployed model, and what it needs."""

    name: str  # as --runtime takes it and the saved "runtime" shows it
    deployer: str  # "module:function", models/deploy/deployer.py's signature; imported when a cell deploys
    precisions: Mapping[str, tuple[str, ...]]  # per device kind (DEVICE_KINDS) it runs on, the precisions it runs there
    refusals: Mapping[str, str]  # per device kind or precision it does not run, why ("{device}": the device's name)
    note: str = ""  # said after its name in --runtime's help
    extra: Extra | None = None  # what it needs installed
    precision_extras: Mapping[str, Extra] = field(default_factory=dict)  # what a precision through it needs besides
    providers: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # per device kind, the ONNX Runtime
    # execution provider it needs there and the package that has it
    key_versions: tuple[str, ...] = ()  # the modules whose version joins the cell key: another version, another cell
    id_token: str = ""  # how it shows in a cell id ("": its name); the default runtime does not show
    per_shape: bool = False  # its deployed model is made for one batch and shape (a compiled graph): made per cell
    cached: bool = False  # its deployed model is an exported file, kept in the deployed-model cache
    fused: bool = False  # its graph runs as fused kernels (conv+bn+activation, elementwise chains): how a board predicts it
    board_module: str = ""  # the Python module a remote board needs to run it ("": not run on a remote board)

    @property
    def token(self) -> str:
        return self.id_token or self.name

    @property
    def through_onnx_runtime(self) -> bool:
        """Its model is exported to ONNX and run by an ONNX Runtime session (a provider per device kind)."""
        return bool(self.providers)

    def refusal(self, device_kind: str, precision: str) -> str | None:
        """Why it cannot run ``precision`` on a device of ``device_kind``; None where it can (as far as the
        registry says: a provider's presence is support.py's to check)."""
        if device_kind not in self.precisions:
            return self.refusals[device_kind]
        if precision not in self.precisions[device_kind]:
            return self.refusals[precision]
        return None

    def deploy_function(self) -> Callable[..., Any]:
        module, _, function = self.deployer.partition(":")
        return getattr(importlib.import_module(module), function)

    def key_parts(self) -> dict[str, str]:
        """What joins the cell key for it: each key module's version (imported: it is about to run)."""
        return {name: importlib.import_module(name).__version__ for name in self.key_versions}


def _by_name(*entries: Any) -> dict[str, Any]:
    return {entry.name: entry for entry in entries}


PRECISIONS: dict[str, Precision] = _by_name(
    Precision("fp32", "float32", 4, peak_key="fp32"),
    Precision("fp16", "float16", 2, cpu_flags=("avx512_fp16", "amx_fp16", "asimdhp", "fphp"), cuda_capability=(5, 3),
              peak_key="fp16"),
    Precision("bf16", "bfloat16", 2, cpu_flags=("avx512_bf16", "amx_bf16", "bf16"), cuda_capability=(8, 0),
              peak_key="bf16"),
    Precision("int8", "float32", 1, note="post-training static quantization", calibrated=True),
)

_ALL = tuple(PRECISIONS)
_NO_BF16 = ("fp32", "fp16", "int8")  # ONNX Runtime takes numpy inputs
_DEPLOYER = "pytest_edgeprof.models.deploy.deployer"
_PT2E_ON_CPU = ("int8 through PyTorch here is PT2E's X86 quantizer, for CPUs; "
                "on a GPU use --runtime onnxruntime or tensorrt")
RUNTIMES: dict[str, Runtime] = _by_name(
    Runtime("eager", f"{_DEPLOYER}:deploy_eager", {"cpu": _ALL, "cuda": ("fp32", "fp16", "bf16")},
            {"int8": _PT2E_ON_CPU},
            precision_extras={"int8": INT8}, board_module="torch"),
    Runtime("compile", f"{_DEPLOYER}:deploy_compiled", {"cpu": _ALL, "cuda": ("fp32", "fp16", "bf16")},
            {"int8": _PT2E_ON_CPU},
            note="torch.compile, inductor", precision_extras={"int8": INT8}, per_shape=True, fused=True),
    Runtime("onnxruntime", f"{_DEPLOYER}:deploy_onnx", {"cpu": _NO_BF16, "cuda": _NO_BF16},
            {"bf16": "ONNX Runtime takes numpy inputs, and numpy has no bfloat16"},
            extra=ONNX, providers={"cuda": ("CUDAExecutionProvider", "onnxruntime-gpu")},
            key_versions=("onnxruntime",), cached=True, fused=True, board_module="onnxruntime"),
    Runtime("tensorrt", f"{_DEPLOYER}:deploy_onnx", {"cuda": _NO_BF16},
            {"cpu": "TensorRT runs on NVIDIA GPUs; {device} is not one",
             "bf16": "TensorRT through ONNX Runtime takes numpy inputs, and numpy has no bfloat16"},
            note="ONNX Runtime's TensorRT provider, on an NVIDIA GPU with an onnxruntime-gpu built with TensorRT",
            extra=ONNX, providers={"cuda": ("TensorrtExecutionProvider", "onnxruntime-gpu built with TensorRT")},
            key_versions=("onnxruntime",), cached=True, fused=True, board_module="tensorrt"),
)
DEFAULT_PRECISION, DEFAULT_RUNTIME = next(iter(PRECISIONS)), next(iter(RUNTIMES))


def id_tokens(precision: str, runtime: str) -> list[str]:
    """How a precision and runtime show in a cell id: each but the default, ``["int8", "onnxruntime"]``."""
    shown = [precision] if precision != DEFAULT_PRECISION else []
    return shown + ([RUNTIMES[runtime].token] if runtime != DEFAULT_RUNTIME else [])


def torch_dtype(precision: str) -> Any:  # -> torch.dtype
    """The torch dtype a module is cast to for ``precision`` (int8: float32, quantized from there)."""
    import torch

    return getattr(torch, PRECISIONS[precision].dtype)


# --- help texts and extras ------------------------------------------------------------------------


def _listed(entries: Mapping[str, Any], default: str, describe: Callable[[Any], str]) -> str:
    items = []
    for name, entry in entries.items():
        notes = [note for note in ("default" if name == default else "", describe(entry)) if note]
        items.append(f"{name} ({'; '.join(notes)})" if notes else name)
    return ", ".join(items)


def precision_help() -> str:
    """``--precision``'s help: every precision, the default marked."""
    return (f"comma list of precisions from {_listed(PRECISIONS, DEFAULT_PRECISION, lambda p: p.note)}; "
            f"ids name every one but {DEFAULT_PRECISION}, e.g. resnet50-base-int8-onnxruntime-b8-224x224")


def runtime_help() -> str:
    """``--runtime``'s help: every runtime, the default marked, with what it needs installed."""
    def describe(runtime: Runtime) -> str:
        needs = f"needs pytest-edgeprof[{runtime.extra.name}]" if runtime.extra else ""
        return "; ".join(note for note in (runtime.note, needs) if note)

    return f"comma list of runtimes from {_listed(RUNTIMES, DEFAULT_RUNTIME, describe)}"


def check_extras(precisions: tuple[str, ...], runtimes: tuple[str, ...]) -> None:
    """``UsageError`` naming the extra to install where a runtime or precision asked for is not installed:
    each runtime's own extra first, then what a precision through one of them needs besides."""
    asked: dict[Extra, str] = {}
    for runtime in runtimes:
        if (extra := RUNTIMES[runtime].extra) is not None:
            asked.setdefault(extra, f"--runtime {runtime}")
    for runtime in runtimes:
        for precision in precisions:
            if (extra := RUNTIMES[runtime].precision_extras.get(precision)) is not None:
                asked.setdefault(extra, f"--precision {precision}")
    for extra, option in asked.items():
        if missing := extra.missing():
            raise UsageError(f"{option} needs {', '.join(missing)}, not installed; "
                             f"pip install 'pytest-edgeprof[{extra.name}]'")

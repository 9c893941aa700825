"""Which precision and runtime a device can run usefully, decided once per device before any cell.

A precision the hardware has no arithmetic for still runs in PyTorch, emulated and many times slower
than float32, which answers no deployment question: such a deployment is skipped with its reason,
said once. The CPU's flags are Linux's (``/proc/cpuinfo``): x86 ``avx512_fp16``/``amx_fp16`` and
``avx512_bf16``/``amx_bf16``, Arm ``asimdhp``/``fphp`` and ``bf16``. On CUDA, fp16 needs compute
capability 5.3 (the Jetson Nano's Maxwell has it) and bf16 8.0 (Ampere). The flags, capabilities and
what each runtime runs where are the registry's (``axes.py``); this module reads the device.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pytest_edgeprof.axes import PRECISIONS, RUNTIMES
from pytest_edgeprof.device import DeviceProfile


def unsupported(profile: DeviceProfile, precision: str, runtime: str) -> str | None:
    """Why ``precision`` through ``runtime`` cannot run usefully on the device; None where it can."""
    return _precision_reason(profile, precision) or _runtime_reason(profile, precision, runtime)


def _precision_reason(profile: DeviceProfile, precision: str) -> str | None:
    entry = PRECISIONS[precision]
    if not profile.is_cuda:
        return entry.cpu_shortfall(cpu_flags())
    if entry.cuda_capability is None:
        return None
    import torch

    return entry.cuda_shortfall(torch.cuda.get_device_capability(profile.torch_device), profile.name)


def _runtime_reason(profile: DeviceProfile, precision: str, runtime: str) -> str | None:
    entry = RUNTIMES[runtime]
    kind = "cuda" if profile.is_cuda else "cpu"
    refusal = entry.refusal(kind, precision)
    if refusal is not None:
        return refusal.format(device=profile.name)
    provider = entry.providers.get(kind)
    return _missing_provider(*provider) if provider else None


def _missing_provider(provider: str, package: str) -> str | None:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if provider in available:
        return None
    return f"ONNX Runtime here has no {provider} (it has {', '.join(available)}; install {package})"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags; empty where /proc/cpuinfo cannot say (then nothing is ruled out)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()

"""Which precision and runtime a device can run usefully, decided once per device before any cell.

A precision the hardware has no arithmetic for still runs in PyTorch, emulated and many times slower
than float32, which answers no deployment question: such a configuration is skipped with its reason,
said once. The CPU's flags are Linux's (``/proc/cpuinfo``): x86 ``avx512_fp16``/``amx_fp16`` and
``avx512_bf16``/``amx_bf16``, Arm ``asimdhp``/``fphp`` and ``bf16``. On CUDA, fp16 needs compute
capability 5.3 (the Jetson Nano's Maxwell has it) and bf16 8.0 (Ampere).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pytest_edgeprof.device import DeviceProfile

CPU_FLAGS = {"fp16": ("avx512_fp16", "amx_fp16", "asimdhp", "fphp"), "bf16": ("avx512_bf16", "amx_bf16", "bf16")}
CUDA_CAPABILITY = {"fp16": (5, 3), "bf16": (8, 0)}


def unsupported(profile: DeviceProfile, precision: str, runtime: str) -> str | None:
    """Why ``precision`` through ``runtime`` cannot run usefully on the device; None where it can."""
    return _precision_reason(profile, precision) or _runtime_reason(profile, precision, runtime)


def _precision_reason(profile: DeviceProfile, precision: str) -> str | None:
    if precision not in CPU_FLAGS:
        return None
    if profile.is_cuda:
        import torch

        capability = torch.cuda.get_device_capability(profile.torch_device)
        needed = CUDA_CAPABILITY[precision]
        if capability < needed:
            return (f"{precision} needs CUDA compute capability {needed[0]}.{needed[1]}; "
                    f"{profile.name} has {capability[0]}.{capability[1]}")
        return None
    flags = cpu_flags()
    if flags and not flags.intersection(CPU_FLAGS[precision]):
        return (f"{precision} on this CPU would be emulated: it has none of {', '.join(CPU_FLAGS[precision])} "
                "(/proc/cpuinfo)")
    return None


def _runtime_reason(profile: DeviceProfile, precision: str, runtime: str) -> str | None:
    if runtime in ("eager", "compile") and precision == "int8" and profile.is_cuda:
        return "int8 through PyTorch here is PT2E's X86 quantizer, for CPUs; on a GPU use --runtime onnxruntime or tensorrt"
    if runtime == "onnxruntime" and precision == "bf16":
        return "ONNX Runtime takes numpy inputs, and numpy has no bfloat16"
    if runtime == "tensorrt":
        return _tensorrt_reason(profile, precision)
    if runtime == "onnxruntime" and profile.is_cuda:
        return _missing_provider("CUDAExecutionProvider", "onnxruntime-gpu")
    return None


def _tensorrt_reason(profile: DeviceProfile, precision: str) -> str | None:
    if not profile.is_cuda:
        return f"TensorRT runs on NVIDIA GPUs; {profile.name} is not one"
    if precision == "bf16":
        return "TensorRT through ONNX Runtime takes numpy inputs, and numpy has no bfloat16"
    return _missing_provider("TensorrtExecutionProvider", "onnxruntime-gpu built with TensorRT")


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

"""Peak-memory meters: the CUDA allocator, torch's own CPU allocations, the process's resident high-water.

One call of ``measure_peak_memory(fn, device)`` runs ``fn`` once and says how much memory that call
held at its peak (see ``peak_mem_bytes`` in docs/saved-keys.md):

- CUDA: the caching allocator's peak after a reset (``max_memory_allocated``), less what was already
  allocated before the call; ``max_memory_reserved`` beside it.
- CPU: the running total of torch's own allocation and free events during the call, recorded by the
  profiler, and its maximum. Freed memory that the C allocator keeps, and tensors that were already
  alive before the call, do not enter it, so the figure does not depend on what ran before. The
  profiler follows the calling thread: tensors that other Python threads allocate are not counted
  (``peak_rss_bytes`` sees them).
- Everywhere: the process's resident high-water during the call above the resident size just before
  it (``peak_rss_bytes``). Before the baseline, freed heap memory is handed back to the kernel
  (glibc ``malloc_trim``) and the kernel's high-water mark is reset (``/proc/self/clear_refs``), so that
  memory a previous, larger cell freed is neither in the baseline nor reused unseen.
- Shared-memory devices (Jetson): CPU and GPU draw on one DRAM, so ``peak_mem_bytes`` is the larger of
  the CUDA allocator's peak and the process's resident peak.

A measurement runs ``fn`` one extra time outside the timed region; the profiler slows that call down
(see tools/memory_order.py for figures), so call it once per cell, not per round.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from pytest_edgeprof.compat.torch_profiler import allocation_events
from pytest_edgeprof.errors import UsageError

# The CPU peak below reads torch's profiler (Kineto), which prints its own start/stop trace lines and,
# on a CUDA build without a GPU, a device-count error to stderr on every use: silence its logger
# unless the user has set a level. Read once, when the profiler first starts.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_HIGH_WATER = "5"  # clear_refs code: reset VmHWM to the current VmRSS (Linux >= 4.0)


@dataclass(frozen=True)
class MemoryReading:
    """What one call held at its peak, in bytes. ``method`` says how ``peak_mem_bytes`` was measured."""

    peak_mem_bytes: int
    peak_rss_bytes: int
    peak_reserved_bytes: int | None
    method: str


def measure_peak_memory(
    fn: Callable[[], object], device: torch.device | str, *, shared_memory: bool = False
) -> MemoryReading:
    """Run ``fn`` once on ``device`` and return the memory it held at its peak.

    ``shared_memory`` marks a device whose CPU and GPU share one DRAM (a Jetson): then
    ``peak_mem_bytes`` is the larger of CUDA's peak and the process's resident peak.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return _measure_cuda(fn, device, shared_memory=shared_memory)
    if device.type == "cpu":
        return _measure_cpu(fn)
    raise UsageError(f"peak memory on device {str(device)!r} is not supported; accepted: cpu, cuda")


def measure_resident_peak(fn: Callable[[], object]) -> MemoryReading:
    """Run ``fn`` once and return the process's resident high-water above its size before the call: the
    peak of a runtime that allocates outside torch (ONNX Runtime), where no allocator can be asked."""
    with _resident_high_water() as rss:
        fn()
    return MemoryReading(peak_mem_bytes=rss.peak, peak_rss_bytes=rss.peak, peak_reserved_bytes=None,
                         method=f"process resident high-water over the call ({rss.method})")


def model_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers (each tensor counted once, even when shared)."""
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


# --- CPU -------------------------------------------------------------------------------------------


def _measure_cpu(fn: Callable[[], object]) -> MemoryReading:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        # The profiler is started first so that its own start-up allocations are in the baseline.
        with _resident_high_water() as rss:
            fn()
    own_peak = _peak_of_allocation_events(prof, device_type="cpu")
    return MemoryReading(
        peak_mem_bytes=own_peak,
        peak_rss_bytes=rss.peak,
        peak_reserved_bytes=None,
        method="torch CPU allocations (profiler), running-sum peak",
    )


def _peak_of_allocation_events(prof: profile, device_type: str) -> int:
    """Highest running total of the bytes allocated during the profiled call and not yet freed.

    Each allocation event (+bytes) and free (-bytes) carries its pointer. A free counts only when
    its pointer was allocated inside the call: freeing a tensor that was alive before the call (the
    profiler reports such frees when the tensor was allocated under an earlier profiler) must not
    pull this call's total down.
    """
    events = sorted(allocation_events(prof, device_type))
    live: dict[int, int] = {}
    running = peak = 0
    for _, ptr, size in events:
        if size > 0:
            live[ptr] = live.get(ptr, 0) + size
            running += size
            peak = max(peak, running)
        elif ptr in live:
            running -= live.pop(ptr)
    return peak


# --- process resident high-water ------------------------------------------------------------------


@dataclass
class _HighWater:
    baseline: int = 0
    peak: int = 0
    method: str = ""


@contextmanager
def _resident_high_water() -> Iterator[_HighWater]:
    """Measure the process's resident high-water inside the block, above the resident size before it."""
    gc.collect()
    _return_freed_heap()
    result = _HighWater()
    if _reset_kernel_high_water():
        result.baseline = _proc_status_bytes("VmRSS")
        yield result
        result.peak = max(0, _proc_status_bytes("VmHWM") - result.baseline)
        result.method = "VmHWM after clear_refs reset"
    else:
        # No resettable high-water mark (not Linux, or /proc locked down): the lifetime maximum can
        # only show growth beyond every earlier peak, so this is a lower bound.
        result.baseline = _lifetime_max_rss()
        yield result
        result.peak = max(0, _lifetime_max_rss() - result.baseline)
        result.method = "ru_maxrss growth (lower bound)"


def _return_freed_heap() -> None:
    """Hand memory that glibc's malloc keeps after ``free`` back to the kernel (no-op elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl and others have none
    except (OSError, AttributeError):
        return None


def _reset_kernel_high_water() -> bool:
    try:
        _CLEAR_REFS.write_text(_RESET_HIGH_WATER)
    except OSError:
        return False
    return True


def _proc_status_bytes(field: str) -> int:
    for line in _PROC_STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # the kernel writes kB (KiB)
    raise RuntimeError(f"{field} not in {_PROC_STATUS}")


def _lifetime_max_rss() -> int:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # macOS reports bytes, Linux KiB


# --- CUDA ------------------------------------------------------------------------------------------


def _measure_cuda(fn: Callable[[], object], device: torch.device, *, shared_memory: bool) -> MemoryReading:
    torch.cuda.synchronize(device)
    gc.collect()
    # Cached blocks from earlier cells would hide this call's growth in reserved memory.
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    allocated_before = torch.cuda.memory_allocated(device)
    reserved_before = torch.cuda.memory_reserved(device)
    with _resident_high_water() as rss:
        fn()
        torch.cuda.synchronize(device)
    cuda_peak = torch.cuda.max_memory_allocated(device) - allocated_before
    reserved_peak = max(0, torch.cuda.max_memory_reserved(device) - reserved_before)
    if shared_memory and rss.peak > cuda_peak:
        method = f"process resident peak, {rss.method} (shared memory, above the CUDA peak)"
        return MemoryReading(rss.peak, rss.peak, reserved_peak, method)
    method = "CUDA allocator peak after reset"
    if shared_memory:
        method += " (shared memory, >= process resident peak)"
    return MemoryReading(cuda_peak, rss.peak, reserved_peak, method)

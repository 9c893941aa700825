"""The device's physical limit at a precision: achievable FLOP/s and memory bandwidth, probed once per machine.

A cell's efficiency is its FLOP/s over this peak. The peak is *achievable*, not the datasheet's: the
best of a few square GEMMs (2·n³ FLOPs each) at the precision, and a large tensor copy (bytes read +
bytes written) for the bandwidth, on this device with this run's torch threads. The GEMM size grows
from 256 until one GEMM takes ``GEMM_TARGET_S`` (so a 2-core CPU and a datacenter GPU each get a
size that fills them, and the probe stays short). The result is cached as JSON per machine, device,
precision, torch version and thread count, so a session pays for it once per machine; a probe taken
while other processes kept the cores busy (device_state's rule for a soft latency) is used for its
run but not cached, and its ``method`` says so. A cached entry is read only where it verifies against
the digest recorded when it was written (``cache_integrity``) and holds a peak (positive, finite
rates): one that does not is named in a ``CacheWarning``, deleted and probed again, rather than be a
ZeroDivisionError or a TypeError in every cell's efficiency.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import torch

from pytest_edgeprof.axes import PRECISIONS, torch_dtype
from pytest_edgeprof.cache_integrity import discard, read_verified, write_verified
from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.measure.device_state import load_beyond
from pytest_edgeprof.paths import default_cache_dir

GEMM_TARGET_S = 0.02  # one GEMM at least this long: its timing is well above the clock's and the launch's cost
GEMM_MAX_N = {"cpu": 2048, "cuda": 8192}
COPY_BYTES = {"cpu": 256 * 2**20, "cuda": 1024 * 2**20}
REPEATS = 5
WHAT = "peak cache entry"


@dataclass(frozen=True)
class DevicePeak:
    device: str  # "cpu", "cuda:0"
    precision: str  # "fp32", "fp16", "bf16"
    flops_per_s: float  # achievable FLOP/s: best of a few square GEMMs (2*n**3 flops each) at that precision
    bytes_per_s: float  # achievable memory bandwidth: a large tensor copy (bytes read + bytes written) / time
    method: str  # how it was measured, e.g. "gemm n=1024 fp32 best of 5; copy 256 MiB best of 5; 2 threads"


def probe_peak(device: str, precision: str = "fp32", cache_dir: Path | None = None) -> DevicePeak:
    """Measured once per machine (key: machine id, device, precision, torch version, torch threads), cached as JSON
    under cache_dir (default: the pytest-edgeprof cache folder's ``peaks``, beside the variant cache)."""
    dtype = _probed_dtype(precision)
    device = _device_name(device)
    folder = cache_dir if cache_dir is not None else default_cache_dir().parent / "peaks"
    key = _cache_key(device, precision)
    path = folder / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]}.json"
    cached = _read_cached(path, key)
    if cached is not None:
        return cached
    busy_before = _busy()
    peak = _measure(device, precision, dtype)
    busy = busy_before or _busy()
    if busy:  # other work shared the cores: good enough for this run, too low to keep for the next
        return replace(peak, method=f"{peak.method}; not cached: {busy}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_verified(path, json.dumps({"key": key, "peak": asdict(peak)}, indent=1).encode())
    except (OSError, UsageError):  # a cache that cannot be written (or signed) costs the next run another probe
        pass
    return peak


def _busy() -> str:
    """Why the machine is too busy for a peak worth caching ("" if it is not): the same rule as a soft latency's cause."""
    load, threads = os.getloadavg()[0], torch.get_num_threads()
    beyond = load_beyond(load, os.cpu_count() or 1, threads)
    return f"other processes busy (load average {load:g}, this run uses {threads} threads)" if beyond else ""


def _probed_dtype(key: str) -> torch.dtype:
    """The dtype of the precision whose peak key is ``key`` (``axes.PRECISIONS``); ``UsageError`` for another key."""
    probed = {precision.peak_key: name for name, precision in PRECISIONS.items() if precision.peak_key}
    if key not in probed:
        raise UsageError(f"unknown precision {key!r} for the peak probe; accepted: {', '.join(probed)}")
    return torch_dtype(probed[key])


def _device_name(device: str) -> str:
    """``cuda`` as ``cuda:N`` (the current device), so the cache and the record name one GPU."""
    parsed = torch.device(device)
    if parsed.type == "cuda":
        return f"cuda:{parsed.index if parsed.index is not None else torch.cuda.current_device()}"
    return parsed.type


def _cache_key(device: str, precision: str) -> dict[str, str]:
    hardware = torch.cuda.get_device_name(device) if device.startswith("cuda") else _cpu_model()
    return {"machine": _machine_id(), "hardware": hardware, "device": device, "precision": precision,
            "torch": torch.__version__, "threads": str(torch.get_num_threads())}


def _machine_id() -> str:
    for path in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        try:
            return path.read_text().strip()
        except OSError:
            continue
    return platform.node()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read_cached(path: Path, key: dict[str, str]) -> DevicePeak | None:
    """The cached peak under exactly ``key``; None where there is none, or where it fails (then it is
    named in a warning and deleted)."""
    try:
        data = read_verified(path, WHAT)
    except UsageError:  # no cache key at hand: the cache is neither read nor written, the peak is probed
        return None
    if data is None:
        return None
    try:
        saved = json.loads(data)
        if saved["key"] != key:
            raise ValueError("it was probed under another key")
        return _checked(DevicePeak(**saved["peak"]))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        discard(path, WHAT, first_line(exc, with_type=not isinstance(exc, ValueError), limit=200))
        return None


def _checked(peak: DevicePeak) -> DevicePeak:
    """``peak`` where its rates are positive finite numbers and its names are text; else ValueError saying which."""
    for name in ("flops_per_s", "bytes_per_s"):
        value = getattr(peak, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} {value!r} is not a positive number")
    for name in ("device", "precision", "method"):
        if not isinstance(getattr(peak, name), str):
            raise ValueError(f"{name} {getattr(peak, name)!r} is not a text")
    return peak


def _measure(device: str, precision: str, dtype: torch.dtype) -> DevicePeak:
    kind = device.split(":")[0]
    sync = (lambda: torch.cuda.synchronize(device)) if kind == "cuda" else (lambda: None)
    with torch.inference_mode():
        n = _gemm_size(device, dtype, sync, GEMM_MAX_N[kind])
        gemm_s = _gemm_s(n, device, dtype, sync)
        size = _copy_bytes(device, kind)
        copy_s = _copy_s(size, device, sync)
    if kind == "cuda":
        torch.cuda.empty_cache()  # the probe's blocks are not the first cell's memory
    threads = f"{torch.get_num_threads()} threads" if kind == "cpu" else torch.cuda.get_device_name(device)
    method = (f"gemm n={n} {precision} best of {REPEATS}; copy {size // 2**20} MiB best of {REPEATS}; {threads}")
    return DevicePeak(device, precision, 2 * n**3 / gemm_s, 2 * size / copy_s, method)


def _gemm_s(n: int, device: str, dtype: torch.dtype, sync: Callable[[], None]) -> float:
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    return _best_time(lambda: torch.mm(a, b), sync)


def _copy_s(size: int, device: str, sync: Callable[[], None]) -> float:
    source = torch.empty(size, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    return _best_time(lambda: target.copy_(source), sync)


def _copy_bytes(device: str, kind: str) -> int:
    """The copy's size: large enough to leave the caches, at most an eighth of a GPU's free memory (a Jetson shares it)."""
    if kind != "cuda":
        return COPY_BYTES[kind]
    free, _ = torch.cuda.mem_get_info(device)
    return min(COPY_BYTES[kind], free // 8 // 2**20 * 2**20)


def _gemm_size(device: str, dtype: torch.dtype, sync: Callable[[], None], max_n: int) -> int:
    """The smallest power of two from 256 whose GEMM takes ``GEMM_TARGET_S`` (at most ``max_n``)."""
    n = 256
    while n < max_n:
        a = torch.randn(n, n, device=device).to(dtype)
        torch.mm(a, a)  # the first call pays for lazy initialisation
        if _best_time(partial(torch.mm, a, a), sync, repeats=1) >= GEMM_TARGET_S:
            break
        n *= 2
    return n


def _best_time(fn: Callable[[], object], sync: Callable[[], None], repeats: int = REPEATS) -> float:
    """The shortest of ``repeats`` timed calls, after one untimed call."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - began)
    return best

"""Device profiles (cpu, cuda, Jetson boards, ...) and detection of what this host has.

A profile carries the facts a budget needs about a device: its memory capacity, whether that memory
is shared between CPU and GPU (Jetson) or dedicated, and its power envelope. ``resolve_device`` turns
the user's ``--device`` text into a profile, or raises ``UsageError`` saying what this host is.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_edgeprof.errors import UsageError

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
NVPMODEL_STATUS = Path("/var/lib/nvpmodel/status")


@dataclass(frozen=True)
class DeviceProfile:
    name: str  # what the user asked for and what results are saved under: "cpu", "cuda:0", "jetson-nano"
    torch_device: str  # "cpu" or "cuda:N"
    description: str  # the hardware in words: CPU model, GPU name, board model
    memory_bytes: int  # capacity the device's models share (RAM, GPU memory, or the board's shared DRAM)
    shared_memory: bool  # True where CPU and GPU use the same DRAM (Jetson)
    power_envelope_w: tuple[float, float] | None = None  # (lowest, highest) power mode, where known
    jetson_model: str | None = None  # /proc/device-tree/model text on a Jetson

    @property
    def is_cuda(self) -> bool:
        return self.torch_device.startswith("cuda")


@dataclass(frozen=True)
class TargetFigures:
    """What ``--emulate`` needs to predict a cell's figures on a device without the device: its peak
    FLOP/s per precision, memory bandwidth, the memory a program can really use, the runtime's fixed
    overhead, the cost of launching one kernel, and where each figure comes from (``sources``)."""

    peak_flops: dict[str, float]  # precision -> FLOP/s (dense; tensor cores where the precision uses them)
    bandwidth_bytes_per_s: float
    usable_memory_bytes: int  # what one program can hold: the memory less what the OS and the desktop take
    runtime_overhead_bytes: int  # CUDA context, cuDNN/cuBLAS workspace: held before the first tensor
    launch_s: float  # one kernel's fixed cost: the framework's dispatch and the launch
    sources: dict[str, str]  # figure -> its public source


@dataclass(frozen=True)
class BoardSpec:
    """A named board: how to recognise it and its published facts."""

    name: str
    model_pattern: str  # regex matched against /proc/device-tree/model (Jetson) or the GPU name
    memory_bytes: int
    shared_memory: bool
    power_envelope_w: tuple[float, float]
    jetson: bool = True
    figures: TargetFigures | None = None  # what --emulate needs; None: no published figures gathered yet


GIB = 2**30
_TORCH_CUDA_CONTEXT = ("pytorch/pytorch#107667 and #109888 (ptrblck): the CUDA context takes about 300-400 MB "
                       "with lazy module loading (CUDA >= 11.7); before 11.7 every kernel was loaded, over 1000 MB "
                       "(pytorch/pytorch#12873)")
_EAGER_LAUNCH = ("NVIDIA technical blog 'Getting Started with CUDA Graphs' (2019): a kernel launch costs a few "
                 "microseconds; PyTorch's eager dispatch adds about as much again per op on a desktop CPU. "
                 "Jetson: scaled by the CPU's slower single thread (an assumption, not measured on a board)")
JETSON_NANO = TargetFigures(
    peak_flops={"fp32": 128 * 2 * 921.6e6, "fp16": 2 * 128 * 2 * 921.6e6},
    bandwidth_bytes_per_s=25.6e9,
    usable_memory_bytes=2_600_000_000,
    runtime_overhead_bytes=1_000_000_000,
    launch_s=40e-6,
    sources={
        "peak_flops": "NVIDIA Jetson Nano module data sheet DA-09366-001: 128-core Maxwell GPU at 921.6 MHz "
                      "(MAXN), 472 GFLOPs FP16; FP32 is half of it (one FMA per core per clock); Maxwell sm_53 "
                      "has no int8 dot product (DP4A arrived with sm_61) and no bf16",
        "bandwidth": "same data sheet: 4 GB 64-bit LPDDR4 at 1600 MHz, 25.6 GB/s",
        "usable_memory": "tegrastats on L4T 32 reports 3964 MB of RAM, of which the Ubuntu desktop and the OS "
                         "hold about 1.3 GB at idle; the study behind this project budgeted 2.6 GB",
        "runtime_overhead": "JetPack 4.6 ships CUDA 10.2 (no lazy loading): " + _TORCH_CUDA_CONTEXT,
        "launch": _EAGER_LAUNCH + " (4x a desktop's 10 us for the Cortex-A57)",
        "power": "NVIDIA L4T documentation, 'Supported Modes and Power Efficiency': nvpmodel 5W and MAXN 10W",
    },
)
JETSON_ORIN_NANO = TargetFigures(
    peak_flops={"fp32": 1024 * 2 * 625e6, "tf32": 4 * 1024 * 2 * 625e6, "fp16": 8 * 1024 * 2 * 625e6, "bf16": 8 * 1024 * 2 * 625e6,
                "int8": 8 * 2048 * 2 * 625e6},
    bandwidth_bytes_per_s=68e9,
    usable_memory_bytes=6_000_000_000,
    runtime_overhead_bytes=400_000_000,
    launch_s=20e-6,
    sources={
        "peak_flops": "NVIDIA Jetson Orin Nano series data sheet DS-11105-001: 8 GB module, 1024-core Ampere "
                      "GPU with 32 tensor cores (8 SMs) at 625 MHz, 40 INT8 TOPS sparse (20 dense); FP16/BF16 "
                      "tensor cores at half the INT8 rate; FP32 one FMA per core per clock",
        "bandwidth": "same data sheet: 128-bit LPDDR5, 68 GB/s",
        "usable_memory": "tegrastats on JetPack 6 reports about 7.6 GB of RAM; the desktop and the OS hold about "
                         "1.6 GB at idle (carve-outs for the video engines included)",
        "runtime_overhead": "JetPack 6 ships CUDA 12.2 (lazy loading): " + _TORCH_CUDA_CONTEXT,
        "launch": _EAGER_LAUNCH + " (2x a desktop's 10 us for the Cortex-A78AE)",
        "power": "same data sheet: 7 W to 15 W power modes, 25 W 'super' mode with JetPack 6.1",
    },
)
RTX_3070 = TargetFigures(
    peak_flops={"fp32": 5888 * 2 * 1.725e9, "tf32": 46 * 128 * 2 * 1.725e9, "fp16": 46 * 256 * 2 * 1.725e9,
                "bf16": 46 * 256 * 2 * 1.725e9, "int8": 46 * 1024 * 2 * 1.725e9},
    bandwidth_bytes_per_s=448e9,
    usable_memory_bytes=7_600_000_000,
    runtime_overhead_bytes=400_000_000,
    launch_s=10e-6,
    sources={
        "peak_flops": "NVIDIA Ampere GA102 GPU Architecture whitepaper, appendix table for the RTX 3070 (GA104): "
                      "46 SMs, 5888 CUDA cores, 1725 MHz boost: 20.3 TFLOPS FP32, 20.3 TF32 tensor, 40.6 TFLOPS "
                      "FP16/BF16 tensor with FP32 accumulate, 162.6 INT8 TOPS, all dense. The table's 81.3 FP16 is "
                      "with FP16 accumulate; GeForce Ampere runs FP32 accumulate at half that rate, and PyTorch's "
                      "FP16 convolutions and GEMMs accumulate in FP32 (cuDNN's and cuBLAS's default): per SM and "
                      "clock 256 FP16 FMA, 128 TF32, 1024 INT8",
        "bandwidth": "same whitepaper: 256-bit GDDR6 at 14 Gbps, 448 GB/s",
        "usable_memory": "8 GB of GDDR6 (same whitepaper), of which cudaMemGetInfo reports about 7.8 GB total and "
                         "a desktop driving a display holds 0.2 GB or more",
        "runtime_overhead": "a recent CUDA (lazy loading): " + _TORCH_CUDA_CONTEXT,
        "launch": _EAGER_LAUNCH,
        "power": "same whitepaper: 220 W total graphics power; 50 W as the idle-to-light-load floor is an assumption",
    },
)
JETSON_AGX_XAVIER = TargetFigures(
    peak_flops={"fp32": 512 * 2 * 1377e6, "fp16": 64 * 64 * 2 * 1377e6, "int8": 2 * 64 * 64 * 2 * 1377e6},
    bandwidth_bytes_per_s=136.5e9,
    usable_memory_bytes=30_000_000_000,
    runtime_overhead_bytes=1_000_000_000,
    launch_s=20e-6,
    sources={
        "peak_flops": "NVIDIA Jetson AGX Xavier data sheet DS-09654-001: 512-core Volta GPU with 64 tensor cores at "
                      "1377 MHz (MAXN), 11 FP16 TFLOPS (64 FMA per tensor core per clock), 22 INT8 TOPS; FP32 one "
                      "FMA per core per clock (1.4 TFLOPS); Volta has no TF32",
        "bandwidth": "same data sheet: 32 GB 256-bit LPDDR4x at 2133 MHz, 136.5 GB/s",
        "usable_memory": "32 GB module less about 2 GB for the OS and the desktop (an assumption, not measured)",
        "runtime_overhead": "JetPack 4.x ships CUDA 10.2 (no lazy loading): " + _TORCH_CUDA_CONTEXT,
        "launch": _EAGER_LAUNCH + " (2x a desktop's 10 us for the Carmel cores)",
        "power": "same data sheet: 10 W, 15 W and 30 W power modes",
    },
)
JETSON_ORIN_NANO_SUPER = TargetFigures(
    peak_flops={"fp32": 1024 * 2 * 1020e6, "tf32": 4 * 1024 * 2 * 1020e6, "fp16": 8 * 1024 * 2 * 1020e6,
                "bf16": 8 * 1024 * 2 * 1020e6, "int8": 8 * 2048 * 2 * 1020e6},
    bandwidth_bytes_per_s=102e9,
    usable_memory_bytes=6_000_000_000,
    runtime_overhead_bytes=400_000_000,
    launch_s=20e-6,
    sources={
        "peak_flops": "NVIDIA technical blog 'NVIDIA Jetson Orin Nano Developer Kit Gets a Super Boost' (Dec 2024): "
                      "the same 1024-core Ampere GPU at 1020 MHz in MAXN_SUPER, 67 INT8 TOPS sparse (33 dense); "
                      "FP16 tensor at half the INT8 rate, TF32 at half the FP16 rate (Ampere's tensor cores)",
        "bandwidth": "same blog: 102 GB/s (LPDDR5 at 6400 MT/s)",
        "usable_memory": "as jetson-orin-nano: the same 8 GB module",
        "runtime_overhead": "JetPack 6.1 ships CUDA 12.6 (lazy loading): " + _TORCH_CUDA_CONTEXT,
        "launch": _EAGER_LAUNCH + " (2x a desktop's 10 us for the Cortex-A78AE)",
        "power": "same blog: MAXN_SUPER, up to 25 W",
    },
)
RTX_3060 = TargetFigures(
    peak_flops={"fp32": 3584 * 2 * 1.777e9, "tf32": 28 * 128 * 2 * 1.777e9, "fp16": 28 * 256 * 2 * 1.777e9,
                "bf16": 28 * 256 * 2 * 1.777e9, "int8": 28 * 1024 * 2 * 1.777e9},
    bandwidth_bytes_per_s=360e9,
    usable_memory_bytes=11_600_000_000,
    runtime_overhead_bytes=400_000_000,
    launch_s=10e-6,
    sources={
        "peak_flops": "NVIDIA GeForce RTX 3060 specifications (nvidia.com): GA106, 28 SMs, 3584 CUDA cores, 1777 MHz "
                      "boost: 12.7 TFLOPS FP32; GA10x tensor cores per the Ampere GA102 whitepaper: per SM and clock "
                      "256 dense FP16 FMA with FP32 accumulate (half the FP16-accumulate rate on GeForce Ampere; "
                      "PyTorch accumulates FP16 convolutions and GEMMs in FP32), 128 TF32, 1024 INT8: 25.5 FP16 "
                      "TFLOPS, 101.9 INT8 TOPS, dense",
        "bandwidth": "same specifications: 12 GB 192-bit GDDR6 at 15 Gbps, 360 GB/s",
        "usable_memory": "12 GB less about 0.4 GB that the driver and a desktop hold (an assumption)",
        "runtime_overhead": "a recent CUDA (lazy loading): " + _TORCH_CUDA_CONTEXT,
        "launch": _EAGER_LAUNCH,
        "power": "same specifications: 170 W graphics card power; 40 W as the light-load floor is an assumption",
    },
)
BOARDS: dict[str, BoardSpec] = {
    board.name: board
    for board in (
        BoardSpec("jetson-nano", r"Jetson Nano", 4 * GIB, True, (5.0, 10.0), figures=JETSON_NANO),
        BoardSpec("jetson-xavier-nx", r"Xavier NX", 8 * GIB, True, (10.0, 20.0)),
        BoardSpec("jetson-orin-nano", r"Orin Nano", 8 * GIB, True, (7.0, 25.0), figures=JETSON_ORIN_NANO),
        BoardSpec("jetson-orin-nx", r"Orin NX", 16 * GIB, True, (10.0, 40.0)),
        BoardSpec("jetson-agx-orin", r"AGX Orin", 64 * GIB, True, (15.0, 60.0)),
        BoardSpec("rtx-3070", r"RTX 3070", 8 * GIB, False, (50.0, 220.0), jetson=False, figures=RTX_3070),
        BoardSpec("jetson-agx-xavier", r"AGX Xavier|Jetson-AGX", 32 * GIB, True, (10.0, 30.0), figures=JETSON_AGX_XAVIER),
        BoardSpec("jetson-orin-nano-super", r"Orin Nano.*Super", 8 * GIB, True, (7.0, 25.0),
                  figures=JETSON_ORIN_NANO_SUPER),
        BoardSpec("rtx-3060", r"RTX 3060", 12 * GIB, False, (40.0, 170.0), jetson=False, figures=RTX_3060),
    )
}
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "jetson", *BOARDS)
HOST_TARGET = "host"  # this machine as its own target: its figures come from probes at session start
EMULATED = (HOST_TARGET, *(name for name, board in BOARDS.items() if board.figures is not None))


def parse_emulate(text: str) -> str:
    """``--emulate PROFILE``: ``host`` or a board whose figures are gathered; UsageError naming what is missing."""
    name = text.strip().lower()
    if name in EMULATED:
        return name
    if name in BOARDS:
        raise UsageError(f"--emulate {text}: no published figures gathered for {name} (peak FLOP/s per precision, "
                         f"bandwidth, usable memory, runtime overhead); accepted: {', '.join(EMULATED)}")
    raise UsageError(f"unknown --emulate profile {text!r}; accepted: {', '.join(EMULATED)}")


def resolve_device(spec: str, *, device_tree_model: Path = DEVICE_TREE_MODEL) -> DeviceProfile:
    """The profile for ``--device spec`` on this host; ``UsageError`` if the host does not have it."""
    text = spec.strip().lower()
    jetson_model = read_jetson_model(device_tree_model)
    if text == "auto":
        import torch

        if torch.cuda.is_available():
            return _jetson_profile(jetson_model) if jetson_model else _cuda_profile(0)
        return cpu_profile()
    if text == "cpu":
        return cpu_profile()
    if re.fullmatch(r"cuda(:\d+)?", text):
        index = int(text.split(":")[1]) if ":" in text else 0
        _require_cuda(spec, index)
        return _cuda_profile(index)
    if text == "jetson":
        if not jetson_model:
            raise UsageError(f"--device {spec}: this host is not a Jetson ({device_tree_model} names no Jetson board); it is {describe_host()}")
        _require_cuda(spec, 0)
        return _jetson_profile(jetson_model)
    if text in BOARDS:
        return _board_profile(spec, BOARDS[text], jetson_model, device_tree_model)
    raise UsageError(f"unknown --device {spec!r}; accepted: {', '.join(DEVICE_CHOICES)}")


def _board_profile(spec: str, board: BoardSpec, jetson_model: str | None, device_tree_model: Path) -> DeviceProfile:
    import torch

    if board.jetson:
        if not jetson_model or not re.search(board.model_pattern, jetson_model, re.I):
            found = f"a {jetson_model}" if jetson_model else describe_host()
            raise UsageError(f"--device {spec}: this host is not a {board.name} ({device_tree_model}); it is {found}")
        _require_cuda(spec, 0)
        return _jetson_profile(jetson_model)
    _require_cuda(spec, 0)
    gpu = torch.cuda.get_device_name(0)
    if not re.search(board.model_pattern, gpu, re.I):
        raise UsageError(f"--device {spec}: this host's GPU is {gpu}, not a {board.name}")
    return replace(_cuda_profile(0), name=board.name, power_envelope_w=board.power_envelope_w)


def _require_cuda(spec: str, index: int) -> None:
    import torch

    if not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: this host has no CUDA GPU that torch can use (torch {torch.__version__}); it is {describe_host()}")
    count = torch.cuda.device_count()
    if index >= count:
        raise UsageError(f"--device {spec}: this host has {count} CUDA device(s), numbered 0 to {count - 1}")


def cpu_profile() -> DeviceProfile:
    return DeviceProfile(
        name="cpu",
        torch_device="cpu",
        description=f"{cpu_model_name()} ({os.cpu_count()} logical cores)",
        memory_bytes=total_ram_bytes(),
        shared_memory=False,
    )


def _cuda_profile(index: int) -> DeviceProfile:
    import torch

    props = torch.cuda.get_device_properties(index)
    return DeviceProfile(
        name=f"cuda:{index}",
        torch_device=f"cuda:{index}",
        description=props.name,
        memory_bytes=props.total_memory,
        shared_memory=False,
    )


def _jetson_profile(jetson_model: str) -> DeviceProfile:
    board = next((b for b in BOARDS.values() if b.jetson and re.search(b.model_pattern, jetson_model, re.I)), None)
    if board is None:  # a Jetson we have no published facts for: measure what we can
        return DeviceProfile("jetson", "cuda:0", jetson_model, total_ram_bytes(), True, None, jetson_model)
    return DeviceProfile(board.name, "cuda:0", jetson_model, board.memory_bytes, True, board.power_envelope_w, jetson_model)


def read_jetson_model(device_tree_model: Path = DEVICE_TREE_MODEL) -> str | None:
    """The board model of a Jetson (``/proc/device-tree/model``), or None on anything else."""
    try:
        text = device_tree_model.read_bytes().decode(errors="replace").strip("\x00 \n")
    except OSError:
        return None
    return text if "jetson" in text.lower() else None


def read_jetson_power_mode(status_file: Path = NVPMODEL_STATUS) -> str | None:
    """The nvpmodel power mode id (``pmode:0000`` -> ``"0"``), or None where it is not recorded."""
    try:
        match = re.search(r"pmode:\s*(\d+)", status_file.read_text())
    except OSError:
        return None
    return str(int(match.group(1))) if match else None


def cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def total_ram_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def describe_host() -> str:
    import torch

    gpu = "no CUDA GPU" if not torch.cuda.is_available() else f"CUDA GPU {torch.cuda.get_device_name(0)}"
    return f"{platform.machine()} {platform.system()} with {cpu_model_name()} and {gpu}"


def machine_info(profile: DeviceProfile) -> dict[str, object]:
    """What a saved run records about the device beside pytest-benchmark's own machine info."""
    import torch

    info: dict[str, object] = {
        "device": profile.name,
        "device_description": profile.description,
        "memory_bytes": profile.memory_bytes,
        "shared_memory": profile.shared_memory,
        "power_envelope_w": list(profile.power_envelope_w) if profile.power_envelope_w else None,
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
    }
    if profile.is_cuda:
        info["gpu_name"] = torch.cuda.get_device_name(profile.torch_device)
        info["cuda_version"] = torch.version.cuda
        info["gpu_driver"] = nvidia_driver_version()
    if profile.jetson_model:
        info["jetson_model"] = profile.jetson_model
        info["jetson_power_mode"] = read_jetson_power_mode()
    return info


def nvidia_driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else version
    except Exception:  # no NVML (Jetson, no driver, library missing): the driver is simply unknown
        driver = Path("/proc/driver/nvidia/version")
        match = re.search(r"Kernel Module\s+([\d.]+)", driver.read_text()) if driver.exists() else None
        return match.group(1) if match else None

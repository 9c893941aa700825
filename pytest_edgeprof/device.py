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
class BoardSpec:
    """A named board: how to recognise it and its published facts."""

    name: str
    model_pattern: str  # regex matched against /proc/device-tree/model (Jetson) or the GPU name
    memory_bytes: int
    shared_memory: bool
    power_envelope_w: tuple[float, float]
    jetson: bool = True


GIB = 2**30
BOARDS: dict[str, BoardSpec] = {
    board.name: board
    for board in (
        BoardSpec("jetson-nano", r"Jetson Nano", 4 * GIB, True, (5.0, 10.0)),
        BoardSpec("jetson-xavier-nx", r"Xavier NX", 8 * GIB, True, (10.0, 20.0)),
        BoardSpec("jetson-orin-nano", r"Orin Nano", 8 * GIB, True, (7.0, 25.0)),
        BoardSpec("jetson-orin-nx", r"Orin NX", 16 * GIB, True, (10.0, 40.0)),
        BoardSpec("jetson-agx-orin", r"AGX Orin", 64 * GIB, True, (15.0, 60.0)),
        BoardSpec("rtx-3070", r"RTX 3070", 8 * GIB, False, (50.0, 220.0), jetson=False),
    )
}
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "jetson", *BOARDS)


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

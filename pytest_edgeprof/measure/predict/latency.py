"""The time model: a forward's kernels on a board's GPU, fed by its CPU, and the physical floor.

Each kernel takes max(FLOPs / (peak x e_kind), bytes / (bandwidth x e_memory)): e_compute for dense
convolutions and linear layers, e_depthwise for depthwise and grouped ones, e_memory for the bytes.
Eager PyTorch: the CPU spends ``per_op_s`` dispatching each op (Python, the dispatcher, the launch)
and the GPU runs a kernel as soon as it is enqueued and the one before it is done, so the forward
is the CUDA stream replayed op by op: CPU-bound where ops are small (mobilenet at batch 1), GPU-bound
where they are large (vgg16). TensorRT: the engine enqueues its fused kernels at once, each costs
``per_op_s`` of fixed GPU time on top of its work. fp32 convolutions run on TF32 tensor cores where
the GPU has them (Ampere: TensorRT's default, and cuDNN's in PyTorch), linear layers on the FP32 cores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_edgeprof.axes import PRECISIONS, RUNTIMES
from pytest_edgeprof.measure.predict.graph import ModelGraph, Work


@dataclass(frozen=True)
class Params:
    """What is fitted per board and runtime."""

    e_compute: float
    e_depthwise: float
    e_memory: float
    per_op_s: float  # at the calibration's CPU clock (eager) or per fused kernel (TensorRT)

    def as_list(self) -> list[float]:
        return [self.e_compute, self.e_depthwise, self.e_memory, self.per_op_s]


@dataclass(frozen=True)
class Machine:
    """A board at one power mode, as the time model sees it."""

    peak_flops: Mapping[str, float]  # precision -> FLOP/s at this mode's GPU clock ("tf32" where it has it)
    bandwidth_bytes_per_s: float
    cpu_scale: float  # per-op host cost multiplier against the calibration's CPU clock (1: the same)


def conv_peak(machine: Machine, precision: str) -> float:
    if precision == "fp32" and "tf32" in machine.peak_flops:
        return machine.peak_flops["tf32"]
    return machine.peak_flops[precision]


def kernel_s(work: Work, machine: Machine, precision: str, params: Params) -> float:
    size = PRECISIONS[precision].bytes_per_element
    if work.kind == "conv":
        compute = work.flops / (conv_peak(machine, precision) * params.e_compute)
    elif work.kind == "depthwise":  # no tensor cores: the CUDA cores' rate
        compute = work.flops / (machine.peak_flops[precision] * params.e_depthwise)
    else:
        compute = work.flops / (machine.peak_flops[precision] * params.e_compute)
    return max(compute, work.elements * size / (machine.bandwidth_bytes_per_s * params.e_memory))


def forward_s(graph: ModelGraph, runtime: str, machine: Machine, precision: str, params: Params) -> float:
    if RUNTIMES[runtime].fused:
        return sum(kernel_s(w, machine, precision, params) + params.per_op_s for w in graph.fused)
    return eager_stream_s(graph.eager, machine, precision, params)


def eager_stream_s(works: Sequence[Work], machine: Machine, precision: str, params: Params) -> float:
    """The CPU enqueues one op every ``per_op_s``; the GPU starts each when it is enqueued and free."""
    cpu = gpu = 0.0
    dispatch = params.per_op_s * machine.cpu_scale
    for work in works:
        cpu += dispatch
        gpu = max(cpu, gpu) + kernel_s(work, machine, precision, params)
    return max(cpu, gpu)


def floor_s(graph: ModelGraph, machine: Machine, precision: str) -> float:
    """No forward can be faster: all its FLOPs at the highest peak, its weights read once at full bandwidth."""
    peak = max(machine.peak_flops[precision], conv_peak(machine, precision))
    weights = graph.weight_elements * PRECISIONS[precision].bytes_per_element
    return max(graph.flops / peak, weights / machine.bandwidth_bytes_per_s)

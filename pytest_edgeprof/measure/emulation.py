"""``--emulate PROFILE``: a target device's figures for a cell, predicted on the host.

What a cell must hold is the same tensors on any device, so the target's peak memory is the host's
measured peak (weights + input + the forward's activation peak, at the cell's precision) plus the
target's fixed runtime overhead (CUDA context, cuDNN/cuBLAS workspace). Its latency is the per-kernel
roofline (``measure/roofline.py``) against the target's published peak FLOP/s at the precision, its
bandwidth and its launch cost. Its energy is an estimate: the power its envelope gives at the
predicted load times the predicted time. A board's latency comes from the runtime-aware predictor
fitted on published board latencies (``predict/``, as ``edgeprof predict`` gives it), at
``--power-mode``. Every figure is a prediction, saved under the ``target_``
keys beside the host's measured ones (``measurement.Prediction``), never instead of them.

The ``host`` target is this machine, its peak FLOP/s and bandwidth probed at session start
(``measure/peak.py``), so its predictions can be held against its measurements in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from pytest_edgeprof.device import BOARDS, HOST_TARGET, DeviceProfile, parse_emulate
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.predict.graph import ModelGraph, module_graph
from pytest_edgeprof.measure.roofline import KINDS, Kernel, RooflineEfficiency, RooflineTime, kernels, predict
from pytest_edgeprof.measurement import Cell, Memory, Prediction

# The host's per-kind efficiencies and launch cost (measure/roofline.py's fit()) on this project's
# 2-vCPU x86 machine (Intel Xeon, torch on one thread; probed peak 108 GFLOP/s, 15.5 GB/s), fitted by
# ``python tools/emulate_check.py fit`` on 72 cells of nine models that its self-prediction check does not
# use (the script holds both model lists): 89 % of them within ±25 % in-sample. Relative to the probed
# peaks, so they carry over to other x86 hosts only roughly. Depthwise got no weight of its own (its time
# is fitted into the elementwise kernels around it), so it keeps its bound.
HOST_CPU_EFFICIENCY = RooflineEfficiency(
    {"conv": 0.8436, "depthwise": 1.0, "linear": 0.8425, "pool": 0.07025, "elementwise": 0.6269}, 2.408e-05,
    "efficiencies fitted on a 2-vCPU Intel Xeon from resnet34, mobilenet_v2, mnasnet1_0, shufflenet_v2_x1_0, "
    "regnet_x_400mf, alexnet, googlenet, efficientnet_b1, densenet169")


@dataclass(frozen=True)
class Target:
    """A device as ``--emulate`` sees it: figures, not hardware."""

    name: str
    peak_flops: dict[str, float]  # precision -> FLOP/s
    bandwidth_bytes_per_s: float
    usable_memory_bytes: int  # the default memory budget of an emulated cell
    runtime_overhead_bytes: int
    efficiency: RooflineEfficiency
    power_envelope_w: tuple[float, float] | None = None
    sources: dict[str, str] = field(default_factory=dict)
    power_mode: str | None = None  # a board's --power-mode (None: its highest); boards' latency is predict/'s

    @property
    def latency_method(self) -> str:
        """``target_latency_method``: which model predicted the latency."""
        basis = "bound: no fitted efficiencies" if self.efficiency.basis == "bound" else self.efficiency.basis
        return f"roofline per kernel ({basis})"

    def require(self, precision: str) -> None:
        """UsageError naming what is missing where the target has no figures for ``precision``."""
        if precision not in self.peak_flops:
            raise UsageError(f"--emulate {self.name}: no peak FLOP/s for {precision} in its profile "
                             f"(it has {', '.join(self.peak_flops) or 'none'}); emulate it at one of those")


def resolve_target(name: str, host: DeviceProfile, precisions: tuple[str, ...] = ("fp32",),
                   cache_dir: Path | None = None, power_mode: str | None = None) -> Target:
    """The target ``--emulate name`` asks for; ``host`` is probed on ``host``'s device (cached per machine)."""
    from pytest_edgeprof.power_modes import power_mode as check_mode

    name = parse_emulate(name)
    if name == HOST_TARGET:
        if power_mode is not None:
            raise UsageError(f"--power-mode {power_mode}: the host runs at the mode it is in; give --power-mode with "
                             f"--emulate BOARD")
        return host_target(host, precisions, cache_dir)
    check_mode(name, power_mode)
    board = BOARDS[name]
    figures = board.figures
    assert figures is not None  # parse_emulate accepts only boards with figures
    bound = RooflineEfficiency({kind: 1.0 for kind in KINDS}, figures.launch_s, "bound")
    return Target(name, dict(figures.peak_flops), figures.bandwidth_bytes_per_s, figures.usable_memory_bytes,
                  figures.runtime_overhead_bytes, bound, board.power_envelope_w, dict(figures.sources), power_mode)


def host_target(host: DeviceProfile, precisions: tuple[str, ...] = ("fp32",), cache_dir: Path | None = None) -> Target:
    """This machine as a target: peak FLOP/s and bandwidth from the probe (fp32 always, and each of
    ``precisions`` the GEMM probe measures: not int8), its memory, its fitted efficiencies."""
    from pytest_edgeprof.axes import PRECISIONS
    from pytest_edgeprof.measure.peak import probe_peak

    probed = {p: key for p in ("fp32", *precisions) if p in PRECISIONS and (key := PRECISIONS[p].peak_key)}
    peaks = {precision: probe_peak(host.torch_device, key, cache_dir) for precision, key in probed.items()}
    efficiency = HOST_CPU_EFFICIENCY if host.torch_device == "cpu" else RooflineEfficiency(
        {kind: 1.0 for kind in KINDS}, 0.0, "bound")
    first = next(iter(peaks.values()))
    return Target(HOST_TARGET, {p: peak.flops_per_s for p, peak in peaks.items()}, first.bytes_per_s,
                  host.memory_bytes, 0, efficiency, host.power_envelope_w,
                  {"peak_flops": first.method, "bandwidth": first.method, "usable_memory": "the host's RAM"})


def predict_cell(model: nn.Module, cell: Cell, memory: Memory | None, target: Target,
                 precision: str = "fp32") -> Prediction:
    """The target's figures for ``cell``: memory from the host's measured ``memory`` (at the same
    precision), latency from the roofline of ``model``'s kernels, energy from the envelope."""
    target.require(precision)
    if target.name in BOARDS:  # a board's latency: the fitted predictor; host and hand-made targets: the roofline
        return _board_prediction(model, cell, memory, target, precision)
    found = kernels(model, cell.input_shape, cell.batch_size)
    return _prediction(found, cell, memory, target, precision)


def predict_unrunnable(cell: Cell, target: Target) -> Prediction | None:
    """A board's figures for a cell this host cannot run (TensorRT on a PC): its latency and energy from the
    model read on meta tensors, no memory (nothing was measured here); None for ``host`` or a variant."""
    from pytest_edgeprof.measure.predict.graph import model_graph

    if target.name not in BOARDS or cell.variant != "base":
        return None
    return _board_prediction(model_graph(cell.model, cell.batch_size, cell.input_shape), cell, None, target,
                             cell.precision)


def _board_prediction(model: nn.Module | ModelGraph, cell: Cell, memory: Memory | None, target: Target, precision: str) -> Prediction:
    """A board's latency from the fitted runtime-aware predictor (``predict/``), as ``edgeprof predict`` gives it;
    a cell it cannot predict (int8 through eager on a GPU board) keeps no latency and says why."""
    from pytest_edgeprof.measure.predict.predictor import Request, board_time

    peak = None if memory is None else memory.peak_mem_bytes + target.runtime_overhead_bytes
    request = Request(cell.model, target.name, precision, cell.runtime, cell.batch_size, cell.input_shape,
                      target.power_mode)
    try:
        graph = model if isinstance(model, ModelGraph) else module_graph(model, cell.batch_size, cell.input_shape)
        time = board_time(graph, request)
    except UsageError as exc:
        return Prediction(target.name, precision, peak, None, f"no prediction: {exc}", None,
                          "estimate not possible: no predicted latency")
    low, high = (bound * 1e3 for bound in time.interval_s)
    energy = time.watts * time.seconds / cell.batch_size
    return Prediction(target.name, precision, peak, time.seconds * 1e3,
                      f"{time.method}; 90 % interval {low:.3g}-{high:.3g} ms", energy,
                      f"estimate from above: {time.watts:g} W ({time.power_mode or 'its only mode'}) x the predicted time")


def _prediction(found: tuple[Kernel, ...], cell: Cell, memory: Memory | None, target: Target,
                         precision: str = "fp32") -> Prediction:
    time = predict(found, precision, target.peak_flops[precision], target.bandwidth_bytes_per_s, target.efficiency)
    energy, note = _energy_per_image(time, cell.batch_size, target)
    peak = None if memory is None else memory.peak_mem_bytes + target.runtime_overhead_bytes
    return Prediction(target.name, precision, peak, time.total_s * 1e3, target.latency_method, energy, note)


def _energy_per_image(time: RooflineTime, batch_size: int, target: Target) -> tuple[float | None, str]:
    """The envelope's power at the predicted load (its low end idle, its high end busy) times the time."""
    if target.power_envelope_w is None:
        return None, f"estimate not possible: no power envelope for {target.name}"
    low, high = target.power_envelope_w
    load = time.busy_s / time.total_s if time.total_s else 0.0
    power = low + (high - low) * load
    return power * time.total_s / batch_size, (f"estimate: {power:.3g} W from the {low:g}-{high:g} W envelope at "
                                               f"{load:.0%} predicted load x the predicted time")

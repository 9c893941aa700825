"""One model's predicted latency, interval, memory and energy on a board: what ``edgeprof predict`` prints.

Nothing runs on the host: the model is read on meta tensors (``graph.py``) and timed by the fitted
time model (``latency.py``, ``fitted.json``). Memory: the weights, the largest kernel's tensors (a
rough activation peak) and the input at the precision, plus the runtime's fixed cost on the board
(the CUDA context and libraries, ``device.py``), plus for TensorRT its workspace. Energy: the power
mode's budget times the predicted time, an estimate from above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_edgeprof.axes import PRECISIONS, RUNTIMES
from pytest_edgeprof.device import BOARDS
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.predict.boards import BORROWS, check_board, machine, resolve_mode
from pytest_edgeprof.measure.predict.graph import ModelGraph, model_graph
from pytest_edgeprof.measure.predict.latency import floor_s, forward_s
from pytest_edgeprof.measure.predict.table import Entry, key, load

TENSORRT_WORKSPACE_BYTES = 1 << 25  # torch2trt's default max_workspace_size (torch2trt/torch2trt.py)


@dataclass(frozen=True)
class Request:
    model: str
    target: str
    precision: str = "fp16"
    runtime: str = "tensorrt"
    batch_size: int = 1
    input_shape: tuple[int, int, int] = (3, 224, 224)
    power_mode: str | None = None


def check(request: Request) -> None:
    """UsageError naming what is accepted, for a target, precision or runtime that cannot be predicted."""
    board = check_board(request.target)
    if request.runtime not in RUNTIMES:
        raise UsageError(f"unknown --runtime {request.runtime!r}; accepted: {', '.join(RUNTIMES)}")
    if request.precision not in PRECISIONS:
        raise UsageError(f"unknown --precision {request.precision!r}; accepted: {', '.join(PRECISIONS)}")
    figures = BOARDS[board].figures
    assert figures is not None
    has = [p for p in PRECISIONS if p in figures.peak_flops]
    if request.precision not in has:
        raise UsageError(f"--precision {request.precision}: {board} has no {request.precision} "
                         f"(its profile has {', '.join(has)})")
    why = RUNTIMES[request.runtime].refusals.get(request.precision)
    if why is not None:
        accepted = [name for name, runtime in RUNTIMES.items() if request.precision not in runtime.refusals]
        raise UsageError(f"--precision {request.precision} --runtime {request.runtime}: {why}; accepted runtimes for "
                         f"{request.precision}: {', '.join(accepted)}")
    resolve_mode(board, request.power_mode)


def _entry(board: str, runtime: str, table: dict[str, Entry]) -> tuple[str, Entry]:
    fitted = "eager" if runtime == "eager" else "tensorrt"
    source = board if key(board, fitted) in table else BORROWS[board]
    return source, table[key(source, fitted)]


@dataclass(frozen=True)
class BoardTime:
    """A forward's predicted time on a board, its 90 % interval and how it was predicted."""

    seconds: float
    interval_s: tuple[float, float]
    method: str
    power_mode: str | None
    watts: float  # the power mode's budget (the envelope's top for a board without modes)


def board_time(graph: ModelGraph, request: Request, table: dict[str, Entry] | None = None) -> BoardTime:
    """``graph`` timed on ``request``'s board, runtime, precision and power mode by the fitted table."""
    check(request)
    table = load() if table is None else table
    board = request.target.strip().lower()
    mode = resolve_mode(board, request.power_mode)
    source, entry = _entry(board, request.runtime, table)
    at = machine(board, mode, source)
    floor = floor_s(graph, at, request.precision)
    seconds = max(forward_s(graph, request.runtime, at, request.precision, entry.params), floor)
    low, high = entry.interval
    watts = mode.watts if mode is not None else BOARDS[board].power_envelope_w[1]
    return BoardTime(seconds, (max(seconds * low, floor), seconds * high), _method(request, board, source, entry, watts),
                     mode.name if mode else None, watts)


def predict(request: Request, table: dict[str, Entry] | None = None) -> dict[str, Any]:
    check(request)
    graph = model_graph(request.model, request.batch_size, request.input_shape)
    time = board_time(graph, request, table)
    board = request.target.strip().lower()
    peak = _peak_bytes(request, graph.weight_elements, graph.activation_elements)
    figures = BOARDS[board].figures
    assert figures is not None
    c, h, w = request.input_shape
    return {
        "model": request.model, "target": board, "power_mode": time.power_mode,
        "precision": request.precision, "runtime": request.runtime, "batch_size": request.batch_size,
        "input_shape": [c, h, w], "latency_ms": round(time.seconds * 1e3, 4),
        "latency_ms_interval": [round(time.interval_s[0] * 1e3, 4), round(time.interval_s[1] * 1e3, 4)],
        "peak_mem_bytes": peak, "fits": peak <= figures.usable_memory_bytes,
        "usable_memory_bytes": figures.usable_memory_bytes,
        "energy_j_per_image": round(time.watts * time.seconds / request.batch_size, 6),
        "method": time.method,
    }


def _peak_bytes(request: Request, weights: int, activations: int) -> int:
    size = PRECISIONS[request.precision].bytes_per_element
    figures = BOARDS[request.target.strip().lower()].figures
    assert figures is not None
    fixed = figures.runtime_overhead_bytes
    if RUNTIMES[request.runtime].through_onnx_runtime:
        fixed += TENSORRT_WORKSPACE_BYTES
    c, h, w = request.input_shape
    return int((weights + activations + request.batch_size * c * h * w) * size + fixed)


def _method(request: Request, board: str, source: str, entry: Entry, watts: float) -> str:
    model = ("eager stream: per-op host dispatch overlapped with the GPU's kernels" if request.runtime == "eager"
             else "fused graph (conv+bn+activation, elementwise chains folded), efficiency per kernel kind")
    fitted = "eager" if request.runtime == "eager" else "tensorrt"
    text = (f"predicted, not measured: {model}, fitted on published {source} {fitted} latencies of "
            f"{len(entry.fitted_on)} models ({', '.join(entry.precisions)}); held-out error: "
            f"{entry.held_out_within_25:.0%} of {entry.held_out_rows} latencies of models never fitted on within "
            f"±25 %; 90 % interval from leave-one-model-out errors")
    if source != board:
        text += f"; parameters borrowed from {source}, not validated on {board}"
    if request.precision not in entry.precisions:
        text += f"; no published {request.precision} latency was fitted"
    if request.runtime != "tensorrt" and RUNTIMES[request.runtime].fused:
        text += f"; {request.runtime} taken as TensorRT's fused graph (not validated)"
    return text + f"; energy: an estimate from above, the mode's {watts:g} W x the predicted time"

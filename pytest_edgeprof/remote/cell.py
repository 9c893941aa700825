"""One cell measured on a board: the artifact made on the host and placed on the board, the worker's
answer read into the same ``Measurement`` a local cell makes (FLOPs counted on the host, on meta tensors)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from pytest_edgeprof.axes import PRECISIONS, RUNTIMES, torch_dtype
from pytest_edgeprof.measure.cell import cost_of
from pytest_edgeprof.measure.timing import StoppingRule
from pytest_edgeprof.measurement import Cell, Deployment, Energy, Latency, Measurement, Memory, WarmUp
from pytest_edgeprof.models.deploy.deployer import Deployer
from pytest_edgeprof.outcome import OOM_KILLED, Outcome
from pytest_edgeprof.remote.artifacts import Artifact, host_artifact
from pytest_edgeprof.remote.board import SIGKILL_STATUS, Board, WorkerEnd

SLACK_S = 300.0  # beyond warm-up and the ceiling: loading the runtime and the model on a slow board
ENGINE_BUILD_S = 1800.0  # a TensorRT engine built on a Nano takes minutes


@dataclass(frozen=True)
class RemoteRun:
    """How this session runs each cell on the board."""

    rule: StoppingRule
    warm_up_s: float
    energy: bool
    deployer: Deployer


def measure_on_board(board: Board, module: nn.Module, cell: Cell, identity: dict[str, str], run: RemoteRun) -> Measurement:
    """The cell measured on the board; out of memory and a worker's own failure are results. BoardUnreachable
    (a lost connection) and DeployUnsupported (an export the host cannot make) are the caller's."""
    kind, worker_runtime = _artifact_kind(cell.runtime)
    artifact = host_artifact(module, cell, identity, kind=kind, cache_dir=run.deployer.cache,
                             calibration=run.deployer.calibration)
    request = _request(cell, worker_runtime, board.cache.place_artifact(artifact), run)
    timeout = run.warm_up_s + run.rule.max_time_s + (ENGINE_BUILD_S if cell.runtime == "tensorrt" else SLACK_S)
    end = board.run_worker(request, timeout=timeout)
    measurement = _read_answer(board, end, cell, artifact)
    measurement.cost = cost_of(module, cell, len(artifact.data), real_forward=measurement.outcome is Outcome.PASSED)
    return measurement


def _artifact_kind(runtime: str) -> tuple[str, str]:
    """What the host exports for a runtime the board runs, and the worker's runtime that loads it: a TorchScript
    file for the board's torch (eager), else an ONNX file for its ONNX Runtime or TensorRT."""
    module = RUNTIMES[runtime].board_module
    return ("torchscript", "torchscript") if module == "torch" else ("onnx", module)


def _request(cell: Cell, runtime: str, path: str, run: RemoteRun) -> dict[str, Any]:
    rule = run.rule
    return {"op": "measure", "runtime": runtime, "artifact": path, "precision": cell.precision,
            "shape": [cell.batch_size, *cell.input_shape], "dtype": PRECISIONS[cell.precision].dtype, "energy": run.energy,
            "warm_up": {"max_seconds": run.warm_up_s},
            "rule": {"precision": rule.precision, "min_rounds": rule.min_rounds, "min_time_s": rule.min_time_s,
                     "max_time_s": rule.max_time_s}}


def _read_answer(board: Board, end: WorkerEnd, cell: Cell, artifact: Artifact) -> Measurement:
    measurement = Measurement(cell, board.name)
    answer = end.answer or {}
    if answer.get("event") == "result":
        _fill(measurement, answer, cell, artifact)
    elif answer.get("event") == "error":
        oom = answer.get("kind") == "oom"
        measurement.outcome = Outcome.OUT_OF_MEMORY if oom else Outcome.FAILED
        measurement.error = answer.get("message", "") if oom else f"on the board: {answer.get('message', '')}"
    elif end.status == SIGKILL_STATUS:
        how = board.killed_by_oom(end)
        measurement.outcome = Outcome.OUT_OF_MEMORY if how else Outcome.FAILED
        measurement.error = (f"{OOM_KILLED} on the board ({how})" if how else
                             "the worker on the board was killed by signal 9 (SIGKILL), not by the out-of-memory killer")
    else:
        measurement.outcome = Outcome.FAILED
        measurement.error = f"the worker on the board exited with status {end.status}: {end.stderr.strip()[-200:]}"
    return measurement


def _fill(measurement: Measurement, answer: dict[str, Any], cell: Cell, artifact: Artifact) -> None:
    deployment = answer["deployment"]
    measurement.deployment = Deployment(deployment["runtime_version"], deployment["provider"], deployment["options"],
                                        quantization=artifact.quantization)
    measurement.latency = Latency.of(answer["latencies_s"], answer["timer"], stable=answer["stable"])
    measurement.warmup = WarmUp(answer["warmup"]["calls"], answer["warmup"]["settled"])
    measurement.memory = _memory(answer["memory"], cell, len(artifact.data))
    measurement.energy = _energy(answer["energy"], cell)
    measurement.device_state = answer["device_state"]


def _memory(memory: dict[str, Any], cell: Cell, model_bytes: int) -> Memory:
    """As a local cell: on a GPU what the device holds after the call (nvmap, cudaMemGetInfo); else the
    resident high-water over the call plus the model and its input, as ONNX Runtime's local cells count it."""
    if memory.get("gpu_used_bytes"):
        return Memory(memory["gpu_used_bytes"], memory["activation_bytes"], memory["peak_rss_bytes"],
                      "device memory in use after the call (nvmap or cudaMemGetInfo)")
    itemsize = torch_dtype(cell.precision).itemsize  # the input's (int8: float32, quantized inside)
    input_bytes = math.prod((cell.batch_size, *cell.input_shape)) * itemsize
    activation = memory["activation_bytes"]
    return Memory(activation + model_bytes + input_bytes, activation, memory["peak_rss_bytes"], memory["method"])


def _energy(energy: dict[str, Any], cell: Cell) -> Energy:
    if energy.get("joules") is None:
        return Energy(None, None, energy.get("source", "none"), energy.get("reason", ""))
    images = energy["calls"] * cell.batch_size
    return Energy(energy["joules"] / images, energy["avg_power_w"], energy["source"], energy.get("reason", ""))

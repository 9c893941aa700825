"""Measuring one cell, without pytest: warm-up, timed rounds, energy, peak memory, FLOPs.

The rounds themselves are run by a ``RoundsRunner``: everywhere a ``StoppingRule`` (rounds of one
call until the median is known within its precision, or its ceiling); inside pytest the plugin then
hands those rounds to pytest-benchmark, and under ``--benchmark-disable`` it makes one untimed call.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from pytest_edgeprof.device import DeviceProfile, read_jetson_power_mode
from pytest_edgeprof.errors import first_line
from pytest_edgeprof.measure.deployed import RESIDENT, Deployed, as_deployed
from pytest_edgeprof.measure.device_state import read_state
from pytest_edgeprof.measure.energy import EnergyMeter, EnergyWindow, energy_per_image
from pytest_edgeprof.measure.flops import count_cost
from pytest_edgeprof.measure.memory import measure_peak_memory, measure_resident_peak, model_bytes
from pytest_edgeprof.measure.timing import WARM_UP_S, CallRecorder, Rounds, StoppingRule, WarmUpWarning, warm_up
from pytest_edgeprof.measurement import Cell, Cost, Latency, Measurement, Memory, WarmUp
from pytest_edgeprof.models.zoo import ModelInput, input_bytes, model_input, network_input_shape, takes_image_list, task_of
from pytest_edgeprof.outcome import Outcome, is_out_of_memory

if TYPE_CHECKING:
    from pytest_edgeprof.measure.emulation import Target

# Runs the timed rounds of ``recorder`` (None: not timed, as under --benchmark-disable).
RoundsRunner = Callable[[CallRecorder], "Rounds | None"]


def one_untimed_call(recorder: CallRecorder) -> None:
    """The ``RoundsRunner`` of a run without timing (--benchmark-disable): one call, as pytest-benchmark makes."""
    recorder()


def measure_cell(
    model: nn.Module | Deployed,
    cell: Cell,
    profile: DeviceProfile,
    meter: EnergyMeter,
    run_rounds: RoundsRunner,
    example: ModelInput | None = None,
    target: Target | None = None,
    warm_up_s: float = WARM_UP_S,
) -> Measurement:
    """Everything a cell's saved keys ask for (docs/saved-keys.md), and with a ``target``
    (``--emulate``) its predicted figures there. A module runs as it is (float32 eager); a ``Deployed``
    model as its precision and runtime made it. The input is the model's own kind (``zoo.model_input``):
    a detection model gets a list of ``batch_size`` images. Warm-up takes at most ``warm_up_s`` (one
    call at least). Running out of memory is recorded, not raised."""
    measurement = Measurement(cell, profile.name)
    deployed = as_deployed(model, profile.torch_device)
    measurement.deployment = deployed.deployment
    try:
        _measure(deployed, example, measurement, profile, meter, run_rounds, warm_up_s)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        measurement.outcome = Outcome.OUT_OF_MEMORY
        measurement.error = first_line(exc, limit=300)
    measurement.cost = cost_of(deployed.module, cell, deployed.model_bytes,
                               real_forward=measurement.outcome is Outcome.PASSED)
    if target is not None:
        from pytest_edgeprof.measure.emulation import predict_cell

        measurement.prediction = predict_cell(deployed.module, cell, measurement.memory, target, cell.precision)
    return measurement


def _measure(
    model: Deployed,
    example: ModelInput | None,
    measurement: Measurement,
    profile: DeviceProfile,
    meter: EnergyMeter,
    run_rounds: RoundsRunner,
    warm_up_s: float = WARM_UP_S,
) -> None:
    cell, device = measurement.cell, profile.torch_device
    example = model.prepare(model_input(model.module, cell.batch_size, cell.input_shape) if example is None else example)
    recorder = CallRecorder(lambda: model.run(example), "cpu" if model.synchronous else device)
    with torch.inference_mode():
        warmup = warm_up(recorder, device, max_seconds=warm_up_s)
        recorder.clear()
        before = _device_state(profile)
        with EnergyWindow(meter) as window:
            rounds = run_rounds(recorder)
            window.extend(recorder)
        measurement.device_state = {"before": before, "after": _device_state(profile)}
        measurement.memory = memory_of(model, example, profile)
    if rounds is not None:
        measurement.latency = Latency.of(rounds.latencies_s, recorder.method, stable=rounds.stable)
    measurement.warmup = WarmUp(warmup.calls, warmup.settled)
    if warmup.bounded:
        warnings.warn(WarmUpWarning(
            f"{cell.id}: warm-up stopped at its {warm_up_s:g} s bound (--benchmark-max-time, from 1 to 10 s) after "
            f"{warmup.calls} call(s), before its timings settled; the first timed rounds may still be cold"), stacklevel=1)
    assert window.reading is not None
    measurement.energy = energy_per_image(window.reading, recorder.calls * cell.batch_size)


def _device_state(profile: DeviceProfile) -> dict:
    power_mode = read_jetson_power_mode() if profile.jetson_model else None
    return read_state(profile.torch_device, jetson_power_mode=power_mode)


def memory_of(model: nn.Module | Deployed, example: Any, profile: DeviceProfile) -> Memory:
    """Peak memory of one more call. The cell holds its weights and its input as well as what the
    forward pass allocates, so ``peak_mem_bytes`` counts all three."""
    deployed = as_deployed(model, profile.torch_device)
    call = lambda: deployed.run(example)  # noqa: E731
    if deployed.memory == RESIDENT:
        reading = measure_resident_peak(call)
    else:
        reading = measure_peak_memory(call, profile.torch_device, shared_memory=profile.shared_memory)
    resident = deployed.model_bytes + input_bytes(example)
    return Memory(reading.peak_mem_bytes + resident, reading.peak_mem_bytes, reading.peak_rss_bytes, reading.method,
                  reading.peak_reserved_bytes)


def probe_memory(model: nn.Module | Deployed, cell: Cell, profile: DeviceProfile) -> Measurement:
    """Peak memory of one forward pass of the cell (after one call for lazy initialisation), nothing
    timed: what each probe of ``edgeprof capacity`` asks. Running out of memory is recorded."""
    measurement = Measurement(cell, profile.name)
    deployed = as_deployed(model, profile.torch_device)
    try:
        example = deployed.prepare(model_input(deployed.module, cell.batch_size, cell.input_shape))
        with torch.inference_mode():
            deployed.run(example)
            measurement.memory = memory_of(deployed, example, profile)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        measurement.outcome, measurement.error = Outcome.OUT_OF_MEMORY, first_line(exc, limit=300)
    return measurement


def cost_of(model: nn.Module, cell: Cell, deployed_bytes: int | None = None, real_forward: bool = True) -> Cost:
    """FLOPs, MACs and params for the cell's batch and shape, the bytes of the model as deployed
    (``deployed_bytes``; the module's own where it runs as it is), its task and what its network saw.
    Counted on meta tensors, else (``real_forward``) on one real forward of a random input."""
    held = model_bytes(model) if deployed_bytes is None else deployed_bytes
    task = "detection" if takes_image_list(model) else task_of(cell.model)
    seen = network_input_shape(model, cell.input_shape)
    try:
        cost = count_cost(model, cell.input_shape, cell.batch_size, real_forward=real_forward)
    except Exception as exc:  # e.g. a forward that makes real tensors or reads values: say why, keep the cell
        return Cost(None, None, None, held, first_line(exc, limit=300), task, seen)
    return Cost(cost.flops, cost.macs, cost.params, held, "", task, seen, cost.method, cost.note)


def measure_model(
    model: nn.Module,
    cell: Cell,
    device: str = "cpu",
    *,
    energy: bool = True,
    rule: StoppingRule = StoppingRule(),
) -> Measurement:
    """``measure_cell`` for a notebook: the device by name (as ``--device`` takes it), the best energy
    source for it (or none), and rounds until the median is known within ``rule.precision`` (±1 %)
    or ``rule.max_time_s`` has passed."""
    from pytest_edgeprof.device import resolve_device
    from pytest_edgeprof.measure.energy import open_meter

    profile = resolve_device(device)
    meter = open_meter(profile, no_energy=not energy)
    try:
        return measure_cell(model, cell, profile, meter, rule.run)
    finally:
        meter.close()

"""Measuring one cell, without pytest: warm-up, timed rounds, energy, peak memory, FLOPs.

The rounds themselves are run by a ``RoundsRunner``: everywhere a ``StoppingRule`` (rounds of one
call until the median is known within its precision, or its ceiling); inside pytest the plugin then
hands those rounds to pytest-benchmark, and under ``--benchmark-disable`` it makes one untimed call.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from pytest_edgeprof.device import DeviceProfile, read_jetson_power_mode
from pytest_edgeprof.errors import first_line
from pytest_edgeprof.measure.device_state import read_state
from pytest_edgeprof.measure.energy import EnergyMeter, EnergyWindow, energy_per_image
from pytest_edgeprof.measure.flops import count_cost
from pytest_edgeprof.measure.memory import measure_peak_memory, model_bytes
from pytest_edgeprof.measure.timing import CallRecorder, Rounds, StoppingRule, warm_up
from pytest_edgeprof.measurement import Cell, Cost, Latency, Measurement, Memory, WarmUp
from pytest_edgeprof.models.zoo import ModelInput, input_bytes, model_input, network_input_shape, takes_image_list, task_of
from pytest_edgeprof.outcome import Outcome, is_out_of_memory

# Runs the timed rounds of ``recorder`` (None: not timed, as under --benchmark-disable).
RoundsRunner = Callable[[CallRecorder], "Rounds | None"]


def measure_cell(
    model: nn.Module,
    cell: Cell,
    profile: DeviceProfile,
    meter: EnergyMeter,
    run_rounds: RoundsRunner,
    example: ModelInput | None = None,
) -> Measurement:
    """Everything a cell's saved keys ask for (README "What is saved"). Running out of memory is
    recorded, not raised. The input is the model's own kind (``zoo.model_input``): a detection model
    gets a list of ``batch_size`` images."""
    measurement = Measurement(cell, profile.name)
    model = model.eval().to(profile.torch_device)
    try:
        _measure(model, example, measurement, profile, meter, run_rounds)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        measurement.outcome = Outcome.OUT_OF_MEMORY
        measurement.error = first_line(exc, limit=300)
    measurement.cost = cost_of(model, cell, real_forward=measurement.outcome is Outcome.PASSED)
    return measurement


def _measure(
    model: nn.Module,
    example: ModelInput | None,
    measurement: Measurement,
    profile: DeviceProfile,
    meter: EnergyMeter,
    run_rounds: RoundsRunner,
) -> None:
    cell, device = measurement.cell, profile.torch_device
    example = model_input(model, cell.batch_size, cell.input_shape, device) if example is None else _on(example, device)
    recorder = CallRecorder(lambda: model(example), device)
    with torch.inference_mode():
        warmup = warm_up(recorder, device)
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
    assert window.reading is not None
    measurement.energy = energy_per_image(window.reading, recorder.calls * cell.batch_size)


def _device_state(profile: DeviceProfile) -> dict:
    power_mode = read_jetson_power_mode() if profile.jetson_model else None
    return read_state(profile.torch_device, jetson_power_mode=power_mode)


def _on(example: ModelInput, device: str) -> ModelInput:
    return [image.to(device) for image in example] if isinstance(example, list) else example.to(device)


def memory_of(model: nn.Module, example: ModelInput, profile: DeviceProfile) -> Memory:
    """Peak memory of one more call. The cell holds its weights and its input as well as what the
    forward pass allocates, so ``peak_mem_bytes`` counts all three."""
    reading = measure_peak_memory(lambda: model(example), profile.torch_device, shared_memory=profile.shared_memory)
    resident = model_bytes(model) + input_bytes(example)
    return Memory(reading.peak_mem_bytes + resident, reading.peak_mem_bytes, reading.peak_rss_bytes, reading.method,
                  reading.peak_reserved_bytes)


def probe_memory(model: nn.Module, cell: Cell, profile: DeviceProfile) -> Measurement:
    """Peak memory of one forward pass of the cell (after one call for lazy initialisation), nothing
    timed: what each probe of ``edgeprof capacity`` asks. Running out of memory is recorded."""
    measurement = Measurement(cell, profile.name)
    model = model.eval().to(profile.torch_device)
    try:
        example = model_input(model, cell.batch_size, cell.input_shape, profile.torch_device)
        with torch.inference_mode():
            model(example)
            measurement.memory = memory_of(model, example, profile)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        measurement.outcome, measurement.error = Outcome.OUT_OF_MEMORY, first_line(exc, limit=300)
    return measurement


def cost_of(model: nn.Module, cell: Cell, real_forward: bool = True) -> Cost:
    """FLOPs, MACs and params for the cell's batch and shape, the model's bytes, its task and what its
    network saw. Counted on meta tensors, else (``real_forward``) on one real forward of a random input."""
    task = "detection" if takes_image_list(model) else task_of(cell.model)
    seen = network_input_shape(model, cell.input_shape)
    try:
        cost = count_cost(model, cell.input_shape, cell.batch_size, real_forward=real_forward)
    except Exception as exc:  # e.g. a forward that makes real tensors or reads values: say why, keep the cell
        return Cost(None, None, None, model_bytes(model), first_line(exc, limit=300), task, seen)
    return Cost(cost.flops, cost.macs, cost.params, model_bytes(model), "", task, seen, cost.method, cost.note)


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

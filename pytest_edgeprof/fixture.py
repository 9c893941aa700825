"""The ``edgeprof`` fixture's object: a timer around pytest-benchmark's ``benchmark`` that also
measures memory, energy and FLOPs, and fails the test when the cell breaks a budget."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Mapping

import pytest
import torch
from torch import nn

from .budgets import Budget, evaluate, format_bytes
from .energy import EnergyWindow, energy_extra_info
from .flops import count_cost
from .measurement import Cell, LatencyStats, Measurement
from .memory import is_out_of_memory, measure_peak_memory, model_bytes
from .timing import CallRecorder, warm_up
from .zoo import example_input

if TYPE_CHECKING:
    from .session import EdgeprofSession


class EdgeprofTimer:
    """Measures one cell through pytest-benchmark and saves the DESIGN.md keys in its ``extra_info``.

    Call it once per test, like ``benchmark``::

        def test_mine(edgeprof):
            edgeprof(MyNet(), batch_size=4, input_shape=(3, 64, 64))

    The model is moved to the session's device and put in eval mode; the input is created there,
    so host-to-device transfer is not timed. Warm-up runs until the timings settle, outside the
    timed rounds; pytest-benchmark then calibrates and runs the rounds (``--benchmark-max-time``,
    ``--benchmark-min-rounds`` apply) while the energy source measures, topped up with more calls
    where the source needs a longer window. Peak memory is measured on one more call, FLOPs on
    meta tensors. Running out of memory is recorded as a result, not raised.
    """

    def __init__(self, benchmark, session: EdgeprofSession, budgets: Mapping[str, Budget]) -> None:
        self._benchmark = benchmark  # pytest-benchmark's fixture
        self._session = session
        self.profile = session.profile
        self.budgets = dict(budgets)
        self.measurement: Measurement | None = None

    def __call__(
        self,
        model: nn.Module,
        example: torch.Tensor | None = None,
        *,
        cell: Cell | None = None,
        batch_size: int = 1,
        input_shape: tuple[int, int, int] = (3, 224, 224),
        name: str | None = None,
    ) -> Measurement:
        if cell is None:
            if example is not None:
                batch_size, input_shape = example.shape[0], tuple(example.shape[1:])  # type: ignore[assignment]
            cell = Cell(name or type(model).__name__.lower(), "base", batch_size, input_shape)
        measurement = self.measurement = Measurement(cell, self.profile.name)
        self._benchmark.group = cell.model
        model = model.eval().to(self.profile.torch_device)
        try:
            self._measure(model, example, measurement)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            measurement.outcome = "out-of-memory"
            measurement.error = str(exc).strip().splitlines()[0][:300]
            self._session.record_out_of_memory(cell)
        measurement.extra.update(self._cost(model, cell))
        self._judge(measurement)
        return measurement

    def _measure(self, model: nn.Module, example: torch.Tensor | None, measurement: Measurement) -> None:
        cell, device = measurement.cell, self.profile.torch_device
        if example is None:
            example = example_input(cell.batch_size, cell.input_shape, device)
        example = example.to(device)
        recorder = CallRecorder(lambda: model(example), device)
        with torch.inference_mode():
            warmup = warm_up(recorder, device)
            recorder.clear()
            with EnergyWindow(self._session.energy_meter()) as window:
                self._benchmark(recorder)
                measurement.latency = self._timed_latencies(recorder)
                window.extend(recorder)
            memory = measure_peak_memory(lambda: model(example), device, shared_memory=self.profile.shared_memory)
        measurement.timer = recorder.method
        measurement.extra.update(warmup_calls=warmup.calls, warmup_settled=warmup.settled)
        assert window.reading is not None
        measurement.extra.update(energy_extra_info(window.reading, recorder.calls, cell.batch_size))
        # The cell holds its weights and its input as well as what the forward pass allocates.
        resident = model_bytes(model) + example.numel() * example.element_size()
        measurement.extra.update(memory.as_extra_info())
        measurement.extra.update(peak_mem_bytes=memory.peak_mem_bytes + resident, activation_peak_bytes=memory.peak_mem_bytes)

    def _timed_latencies(self, recorder: CallRecorder) -> LatencyStats | None:
        """The timed rounds' per-call latencies; None where pytest-benchmark is disabled."""
        stats = self._benchmark.stats
        if not stats:
            return None
        if recorder.method == "cuda-events":
            # pytest-benchmark's calibration calls come first and one untimed call comes last.
            timed_calls = len(stats.stats.data) * stats.iterations
            return LatencyStats.of(recorder.latencies_s()[-timed_calls - 1 : -1])
        return LatencyStats.of(stats.stats.data)

    @staticmethod
    def _cost(model: nn.Module, cell: Cell) -> dict[str, object]:
        try:
            cost = count_cost(model, cell.input_shape, cell.batch_size)
        except Exception as exc:  # e.g. a forward that makes real tensors or reads values: say why, keep the cell
            why = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
            return {"flops": None, "macs": None, "params": None, "flops_error": why, "model_bytes": model_bytes(model)}
        return {"flops": cost.flops, "macs": cost.macs, "params": cost.params, "model_bytes": model_bytes(model)}

    def _judge(self, measurement: Measurement) -> None:
        """Check the budgets, save everything in ``extra_info``, and fail the test on a broken budget."""
        verdicts = evaluate(self.budgets, measurement.extra_info())
        broken = [v.line(measurement.cell.id, self.profile.name) for v in verdicts if not v.passed]
        if measurement.outcome == "out-of-memory":  # nothing else was measured: the one line says it all
            broken = [self._out_of_memory_line(measurement)]
        elif broken:
            measurement.outcome = "over-budget"
        measurement.extra.update(
            budgets={metric: budget.text for metric, budget in self.budgets.items()},
            budget_verdicts=[verdict.as_dict() for verdict in verdicts],
        )
        self._benchmark.extra_info.update(measurement.extra_info())
        if broken:
            self._session.record_broken(measurement, broken)
            pytest.fail("\n".join(broken), pytrace=False)

    def _out_of_memory_line(self, measurement: Measurement) -> str:
        cell, memory = measurement.cell, self.budgets.get("memory")
        tried = re.search(r"[Tt]ried to allocate ([0-9.]+ ?[KMGT]i?B|[0-9]+ bytes)", measurement.error)
        size = ""
        if tried:
            text = tried.group(1)
            size = f" (tried to allocate {format_bytes(int(text.split()[0])) if text.endswith('bytes') else text})"
        budget = f" > budget {memory.text}" if memory else ""
        return f"peak memory: out of memory at batch {cell.batch_size}{size}{budget} ({cell.id} on {self.profile.name})"


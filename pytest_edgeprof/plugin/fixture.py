"""The ``edgeprof`` fixture's object: a timer around pytest-benchmark's ``benchmark`` that also
measures memory, energy and FLOPs, journals the cell, and fails the test on a broken budget."""

from __future__ import annotations

import pickle
import re
from typing import TYPE_CHECKING, Mapping

import pytest
import torch
from torch import nn

from pytest_edgeprof.budgets import Budget, evaluate, format_bytes
from pytest_edgeprof.measure.flops import check_batch_size, check_input_shape
from pytest_edgeprof.measure.isolation import IsolatedJob, killed_by_oom_killer, run_isolated
from pytest_edgeprof.runs.journal import JournalEntry
from pytest_edgeprof.measure.cell import measure_cell
from pytest_edgeprof.measurement import Cell, LatencyStats, Measurement
from pytest_edgeprof.measure.timing import CallRecorder
from pytest_edgeprof.models.variants import ModelRef

if TYPE_CHECKING:
    from pytest_edgeprof.plugin.session import EdgeprofSession


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
    meta tensors. Running out of memory is recorded as a result, not raised. With ``--resume`` a
    cell already in the journal is replayed from it; with ``--isolate`` it runs in a child process.
    """

    def __init__(self, benchmark, session: EdgeprofSession, budgets: Mapping[str, Budget]) -> None:
        self._benchmark = benchmark  # pytest-benchmark's fixture
        self._session = session
        self.profile = session.profile
        self.budgets = dict(budgets)
        self.measurement: Measurement | None = None

    def __call__(
        self,
        model: nn.Module | ModelRef,
        example: torch.Tensor | None = None,
        *,
        cell: Cell | None = None,
        batch_size: int = 1,
        input_shape: tuple[int, int, int] = (3, 224, 224),
        name: str | None = None,
    ) -> Measurement | None:
        if cell is None:
            if example is not None:
                batch_size, input_shape = example.shape[0], tuple(example.shape[1:])  # type: ignore[assignment]
            cell = Cell(name or type(model).__name__.lower(), "base", batch_size, input_shape)
        check_batch_size(cell.batch_size), check_input_shape(cell.input_shape)  # before anything runs
        self._benchmark.group = cell.model
        entry = self._session.journaled(cell)
        if entry is not None:
            self._replay(entry)
            return None
        if self._session.settings.isolate:
            measurement = self._isolated(model, cell)
        else:
            module = self._session.build(model) if isinstance(model, ModelRef) else model
            meter = self._session.energy_meter()
            measurement = measure_cell(module, cell, self.profile, meter, self._benchmark_rounds, example)
        if measurement.outcome == "out-of-memory" or killed_by_oom_killer(measurement):
            self._session.record_out_of_memory(self._test, cell)
        ref = model if isinstance(model, ModelRef) else self._session.ref_of(model)
        if ref is not None:  # a grid model: what the variant is, and its accuracy at this shape
            measurement.extra.update(self._session.variant_extra(ref))
            measurement.extra.update(self._session.accuracy(ref, cell.input_shape))
        self.measurement = measurement
        self._judge(measurement)
        return measurement

    @property
    def _test(self) -> str:
        return self._benchmark.fullname.split("[")[0]

    def _benchmark_rounds(self, recorder: CallRecorder) -> LatencyStats | None:
        """pytest-benchmark calibrates and runs the rounds; returns their per-call latencies."""
        self._benchmark(recorder)
        stats = self._benchmark.stats
        if not stats:  # --benchmark-disable: one untimed call
            return None
        if recorder.method == "cuda-events":
            # pytest-benchmark's calibration calls come first and one untimed call comes last.
            timed_calls = len(stats.stats.data) * stats.iterations
            return LatencyStats.of(recorder.latencies_s()[-timed_calls - 1 : -1])
        return LatencyStats.of(stats.stats.data)

    def _isolated(self, model: nn.Module | ModelRef, cell: Cell) -> Measurement:
        settings, options = self._session.settings, self._session.benchmark_options
        job = IsolatedJob(
            cell, self.profile,
            model=model if isinstance(model, ModelRef) else None,
            module=None if isinstance(model, ModelRef) else model,
            max_time_s=options.get("max_time", 1.0), min_rounds=options.get("min_rounds", 5),
            memory_limit_bytes=settings.isolate_memory_limit, num_threads=torch.get_num_threads(),
            no_energy=settings.no_energy,
        )
        try:
            measurement = run_isolated(job)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            pytest.fail(f"--isolate: cannot send {type(model).__name__} to a child process ({exc}); "
                        "define the module's class at the top level of an importable module", pytrace=False)
        if measurement.latency is not None:
            self._record_rounds(list(measurement.latency.samples_s), 1)
        return measurement

    def _record_rounds(self, latencies_s: list[float], iterations: int) -> None:
        """Give pytest-benchmark rounds measured elsewhere (a child process, the journal of a killed run)."""
        if not latencies_s:
            return
        stats = self._benchmark._make_stats(iterations)
        for latency in latencies_s:
            stats.update(latency * iterations)
        self._benchmark._mode = "edgeprof"  # the fixture counts as used, like benchmark(...) would

    def _replay(self, entry: JournalEntry) -> None:
        """A cell the journal holds: its saved rounds and extra_info, and its outcome again."""
        self._record_rounds(entry.latencies_s, entry.iterations)
        self._benchmark.extra_info.update(entry.extra_info)
        if not entry.latencies_s:
            self._session.record_untimed(self._benchmark.fullname, entry.extra_info)
        if entry.outcome == "out-of-memory" or entry.message.startswith("child killed by SIGKILL"):
            self._session.record_out_of_memory(self._test, Cell.from_extra_info(entry.extra_info))
        if entry.outcome != "passed":
            pytest.fail(entry.message or entry.outcome, pytrace=False)

    def _judge(self, measurement: Measurement) -> None:
        """Check the budgets, save everything in ``extra_info`` and the journal, fail on a broken budget."""
        verdicts = evaluate(self.budgets, measurement.extra_info())
        broken = [v.line(measurement.cell.id, self.profile.name) for v in verdicts if not v.passed]
        if measurement.outcome == "out-of-memory":  # nothing else was measured: the one line says it all
            broken = [self._out_of_memory_line(measurement)]
        elif measurement.outcome == "failed":
            broken = [f"{measurement.error} ({measurement.cell.id} on {self.profile.name})"]
        elif broken:
            measurement.outcome = "over-budget"
        measurement.extra.update(
            budgets={metric: budget.text for metric, budget in self.budgets.items()},
            budget_verdicts=[verdict.as_dict() for verdict in verdicts],
        )
        info = measurement.extra_info()
        self._benchmark.extra_info.update(info)
        stats = self._benchmark.stats
        rounds, iterations = (list(stats.stats.data), stats.iterations) if stats else ([], 1)
        if not rounds:
            self._session.record_untimed(self._benchmark.fullname, info)
        self._session.journal_cell(measurement.cell, measurement.outcome, info, rounds, iterations, "\n".join(broken))
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

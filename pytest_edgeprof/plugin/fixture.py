"""The ``edgeprof`` fixture's object: a timer around pytest-benchmark's ``benchmark`` that also
measures memory, energy and FLOPs, journals the cell, and fails the test on a broken budget."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pytest
import torch
from torch import nn

from pytest_edgeprof.budgets import Budget, evaluate
from pytest_edgeprof.compat import pytest_benchmark
from pytest_edgeprof.errors import DeployUnsupported, EdgeprofWarning, UsageError, first_line
from pytest_edgeprof.measure.cell import measure_cell
from pytest_edgeprof.measure.device_state import likely_causes
from pytest_edgeprof.measure.flops import check_batch_size, check_input_shape
from pytest_edgeprof.measure.isolation import IsolatedJob, run_isolated
from pytest_edgeprof.measure.timing import CallRecorder, Rounds
from pytest_edgeprof.measurement import Cell, CellKey, Measurement
from pytest_edgeprof.metrics import format_bytes
from pytest_edgeprof.models.identity import module_identity
from pytest_edgeprof.models.variants import ModelRef
from pytest_edgeprof.outcome import OOM_KILLED, Outcome, allocation_text

if TYPE_CHECKING:
    from pytest_edgeprof.measure.deployed import Deployed
    from pytest_edgeprof.plugin.session import EdgeprofSession


SOFT_COV = 0.10  # rounds whose coefficient of variation is above this are soft whatever the interval says


class SoftLatencyWarning(EdgeprofWarning):
    """A cell's latency is soft: its rounds did not reach their precision, or spread widely."""


class EdgeprofTimer:
    """Measures one cell through pytest-benchmark and saves its record in its ``extra_info``.

    Call it once per test, like ``benchmark``::

        def test_mine(edgeprof):
            edgeprof(MyNet(), batch_size=4, input_shape=(3, 64, 64))

    The model is moved to the session's device and put in eval mode; the input is created there,
    so host-to-device transfer is not timed. Warm-up runs until the timings settle, outside the
    timed rounds; the rounds, one call each, go on until the median is known within ``--latency-ci``
    (``--benchmark-min-rounds`` at least, ``--benchmark-max-time`` at most) while the energy source
    measures, topped up with more calls where the source needs a longer window; pytest-benchmark
    saves exactly those rounds. Peak memory is measured on one more call, FLOPs on
    meta tensors. Running out of memory is recorded as a result, not raised. With ``--resume`` a
    cell the journal holds as measured (passed or over budget) under the same key is replayed and
    judged against this run's budgets; with ``--isolate`` it runs in a child process.
    """

    def __init__(self, benchmark, session: EdgeprofSession, budgets: Mapping[str, Budget]) -> None:
        self._benchmark = benchmark  # pytest-benchmark's fixture
        self._session = session
        self._features = session.features  # the feature plugins this run registered: emulation, peak, cooldown, resume
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
    ) -> Measurement:
        if cell is None:
            if example is not None:
                batch_size, input_shape = check_batch_size(example.shape[0]), check_input_shape(tuple(example.shape[1:]))
            cell = Cell(name or type(model).__name__.lower(), "base", batch_size, input_shape)
        check_batch_size(cell.batch_size), check_input_shape(cell.input_shape)  # before anything runs
        self._benchmark.group = cell.model
        ref = model if isinstance(model, ModelRef) else self._session.models.ref_of(model)
        identity = ref.identity() if ref else module_identity(model)
        key = self._session.cell_key(self._benchmark.fullname, cell, identity, evaluated=ref is not None)
        entry = self._features.replay(key)  # --resume: the old journal's, before this run journals the cell
        if entry is not None:  # measured before under this key: its rounds, judged by this run's budgets
            pytest_benchmark.record_rounds(self._benchmark, entry.latencies_s, entry.iterations, self._ceiling())
            return self._judge(entry.measurement, key, entry.latencies_s, entry.iterations, replayed=entry.to_json())
        self._features.before_cell(cell)  # the peak probed before its warm-up, never during its rounds; the cooldown
        try:
            measurement = self._measure(model, cell, identity)
        except UsageError:
            raise
        except DeployUnsupported as exc:  # this deployment cannot handle this model: skipped, the reason saved
            self._session.log.record_skipped(self._benchmark.fullname, Measurement(
                cell, self.profile.name, Outcome.SKIPPED, f"{cell.precision} {cell.runtime}: {exc}"))
            pytest.skip(f"{cell.model} at {cell.precision} through {cell.runtime}: {exc}")
        except Exception as exc:  # a model that raises, cannot take the input, or is no module: a result
            measurement = Measurement(cell, self.profile.name, Outcome.FAILED, first_line(exc, with_type=True, limit=300))
        if ref is not None:  # a grid model: what the variant is, and its accuracy at this shape and deployment
            measurement.pruning = self._session.models.pruning(ref) or measurement.pruning
            measurement.accuracy = self._session.models.accuracy(ref, cell)
        self._features.after_cell(measurement, key)  # its efficiency against the peak, the cooldown's record
        rounds = pytest_benchmark.timed_rounds(self._benchmark)
        latencies_s, iterations = rounds if rounds else ([], 1)
        return self._judge(measurement, key, latencies_s, iterations)

    def _measure(self, model: nn.Module | ModelRef, cell: Cell, identity: dict[str, str]) -> Measurement:
        if self._features.remote is not None:
            return self._on_board(model, cell, identity)
        if self._session.settings.isolate:
            return self._isolated(model, cell, identity)
        models = self._session.models
        deployed: nn.Module | Deployed
        if isinstance(model, ModelRef):
            deployed = models.deploy(model, cell)
        elif not cell.runs_as_built:
            deployed = models.deployer.deploy(model, cell, self.profile.torch_device, identity)
        else:
            deployed = model
        return measure_cell(deployed, cell, self.profile, self._session.energy_meter(), self._benchmark_rounds,
                            target=self._features.target, warm_up_s=self._session.warm_up_s())

    def _benchmark_rounds(self, recorder: CallRecorder) -> Rounds | None:
        """The timed rounds, one call each, until the median is known within ``--latency-ci`` (or the
        ceiling); pytest-benchmark saves exactly these rounds. None under --benchmark-disable."""
        if not self._session.benchmark.enabled:
            self._benchmark(recorder)  # one untimed call, as pytest-benchmark makes when disabled
            return None
        rule = self._session.stopping_rule()
        rounds = rule.run(recorder)
        pytest_benchmark.record_rounds(self._benchmark, rounds.latencies_s, 1, rule.max_time_s)
        return rounds

    def _ceiling(self) -> float:
        """The rounds' ceiling this run uses (--benchmark-max-time, else DEFAULT_CEILING_S), as saved."""
        return self._session.stopping_rule().max_time_s

    def _on_board(self, model: nn.Module | ModelRef, cell: Cell, identity: dict[str, str]) -> Measurement:
        """``--device ssh://...``: the board times the cell; its rounds go to pytest-benchmark as measured elsewhere."""
        assert self._features.remote is not None
        module = self._session.models.build(model) if isinstance(model, ModelRef) else model
        measurement = self._features.remote.measure(module, cell, identity)
        if measurement.latency is not None:
            pytest_benchmark.record_rounds(self._benchmark, measurement.latency.samples_s, 1, self._ceiling())
        else:
            pytest_benchmark.mark_used(self._benchmark)
        return measurement

    def _isolated(self, model: nn.Module | ModelRef, cell: Cell, identity: dict[str, str]) -> Measurement:
        settings = self._session.settings
        job = IsolatedJob(
            cell, self.profile,
            model=model if isinstance(model, ModelRef) else None,
            module=None if isinstance(model, ModelRef) else model,
            deployer=self._session.models.deployer, identity=identity,
            rule=self._session.stopping_rule() if self._session.benchmark.enabled else None,
            memory_limit_bytes=self._session.isolate_memory_limit(), num_threads=torch.get_num_threads(),
            no_energy=settings.no_energy, target=self._features.target, warm_up_s=self._session.warm_up_s(),
        )
        try:
            measurement = run_isolated(job)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            pytest.fail(f"--isolate: cannot send {type(model).__name__} to a child process ({exc}); "
                        "define the module's class at the top level of an importable module", pytrace=False)
        if measurement.outcome is Outcome.SKIPPED:  # the child could not deploy the model: as in this process
            raise DeployUnsupported(measurement.error)
        if measurement.latency is not None:
            pytest_benchmark.record_rounds(self._benchmark, measurement.latency.samples_s, 1, self._ceiling())
        elif job.rule is None:  # --benchmark-disable: the child made the one untimed call
            pytest_benchmark.mark_used(self._benchmark)
        return measurement

    def _judge(self, measurement: Measurement, key: CellKey, rounds: list[float], iterations: int,
               replayed: str = "") -> Measurement:
        """Check this run's budgets, save the record in ``extra_info`` and the journal (a replayed cell
        only where its verdicts changed: ``replayed`` is its journal line), fail on a broken budget."""
        if measurement.outcome is Outcome.OVER_BUDGET:  # a replayed verdict: judged again below
            measurement.outcome = Outcome.PASSED
        measurement.budgets = {metric: budget.text for metric, budget in self.budgets.items()}
        measurement.verdicts = tuple(evaluate(self.budgets, measurement, emulated=self._features.emulation is not None))
        where = self._session.where
        broken = [v.line(measurement.cell.id, where) for v in measurement.verdicts if not v.passed]
        if measurement.outcome is Outcome.OUT_OF_MEMORY:  # nothing else was measured: the one line says it all
            broken = [self._out_of_memory_line(measurement)]
        elif measurement.outcome is Outcome.FAILED:
            broken = [f"{measurement.error} ({measurement.cell.id} on {where})"]
        elif broken:
            measurement.outcome = Outcome.OVER_BUDGET
        self.measurement = measurement
        self._warn_if_soft(measurement)
        self._benchmark.extra_info.update(measurement.to_extra_info())
        self._session.log.record(self._benchmark.fullname, key, measurement, rounds, iterations, broken, replayed)
        if broken:
            pytest.fail("\n".join(broken), pytrace=False)
        return measurement

    def _warn_if_soft(self, measurement: Measurement) -> None:
        """A latency that did not reach its precision, or whose rounds spread more than SOFT_COV, is said
        so, with what the device state says about why (trtexec's advice: lock the clocks)."""
        latency, state = measurement.latency, measurement.device_state or {}
        if latency is None or (latency.stable is not False and (latency.cov or 0) <= SOFT_COV):
            return
        rule = self._session.stopping_rule()
        why = likely_causes(state.get("before", {}), state.get("after", {}))
        reached = "did not reach" if latency.stable is False else "reached"
        warnings.warn(SoftLatencyWarning(
            f"{measurement.cell.id}: median latency {reached} ±{rule.precision:.1%} within its {rule.max_time_s:g} s "
            f"ceiling (--benchmark-max-time) "
            f"({latency.rounds} rounds, coefficient of variation {latency.cov or 0:.1%}); likely: "
            f"{'; '.join(why) or 'nothing the device state shows (a quieter machine or a longer --benchmark-max-time may help)'}"), stacklevel=1)

    def _out_of_memory_line(self, measurement: Measurement) -> str:
        """What ran out, set against the limit it ran into: the allocation that failed and, for an isolated
        cell, the memory its child was allowed (no budget: nothing was measured to judge against one)."""
        cell, tried = measurement.cell, allocation_text(measurement.error)
        said = [f"tried to allocate {tried}"] if tried else []
        if measurement.error.startswith(OOM_KILLED):
            said.append(measurement.error)
        limit = self._session.isolate_memory_limit() if self._session.settings.isolate else None
        if limit is not None:
            said.append(f"the child's memory limit is {format_bytes(limit)}")
        detail = f" ({'; '.join(said)})" if said else ""
        return f"peak memory: out of memory at batch {cell.batch_size}{detail} ({cell.id} on {self._session.where})"

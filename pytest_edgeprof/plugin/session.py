"""One pytest run's state, as every edgeprof run needs it: its settings, the resolved device, its models,
its energy source and its log.

The device, the grid, the models, the energy meter and the log are made on first use, and the session
itself only where edgeprof is engaged (an edgeprof option is set or an edgeprof test is collected), so a
run of plain tests pays for none of it. What only some runs need (``--emulate``, ``--cooldown``, the peak
probe, ``--edgeprof-compare-fail``, ``--resume``) lives in the feature plugins of ``features/``, reached
through ``features`` (``extension.py``); this module imports none of them. Every run journals its cells
(``log``); only replaying them is ``--resume``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pytest_edgeprof.axes import PRECISIONS, RUNTIMES
from pytest_edgeprof.compat.pytest_benchmark import BenchmarkOptions
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.plugin.extension import Features
from pytest_edgeprof.plugin.options import OPTIONS, Settings

if TYPE_CHECKING:
    from pytest_edgeprof.budgets import Budget
    from pytest_edgeprof.device import DeviceProfile
    from pytest_edgeprof.measure.energy.base import EnergyMeter
    from pytest_edgeprof.measure.timing import StoppingRule
    from pytest_edgeprof.measurement import Cell, CellKey
    from pytest_edgeprof.models.grid import Grid
    from pytest_edgeprof.models.model_cache import ModelCache
    from pytest_edgeprof.models.variants import ModelRef
    from pytest_edgeprof.plugin.runlog import RunLog


# The rounds' ceiling where --benchmark-max-time is not given: long enough for most CPU cells of the
# default grid to reach ±1 %, short enough that the grid's 12 cells finish in about two minutes.
DEFAULT_CEILING_S = 5.0
DEFAULT_RULE = (Settings.latency_ci, BenchmarkOptions.min_rounds, DEFAULT_CEILING_S)  # precision, min rounds, ceiling


@dataclass
class EdgeprofSession:
    settings: Settings
    benchmark: BenchmarkOptions = field(default_factory=BenchmarkOptions)
    features: Features = field(default_factory=Features)  # the feature plugins registered for this run
    refusal: str | None = None  # why no cell can be measured in this run (timer, xdist): each edgeprof test errors with it
    grid_asked: bool = False  # --device, --grid or --models (or their ini keys) was set: resolved before collection
    device_shown: bool = False  # the device line was printed (in the header or after collection)
    _profile: DeviceProfile | None = None
    _grid: Grid | None = None  # built on first use (it resolves the device and checks --models)
    _models: ModelCache | None = None  # made on first use (it imports torch)
    _energy_meter: EnergyMeter | None = None  # opened on first use
    _unsupported: dict[tuple[str, str], str] | None = None  # (precision, runtime) -> why the device cannot
    _log: RunLog | None = None

    @property
    def log(self) -> RunLog:
        if self._log is None:
            from pytest_edgeprof.plugin.runlog import RunLog

            self._log = RunLog(self.settings.journal, keep_old=self.features.resume is not None)
        return self._log

    @property
    def has_log(self) -> bool:
        """Whether an edgeprof test has used the log (a run of plain tests never does)."""
        return self._log is not None

    @property
    def device_resolved(self) -> bool:
        """Whether the device is known by now (the user named it, or an edgeprof test asked for it)."""
        return self._profile is not None

    @property
    def profile(self) -> DeviceProfile:
        if self._profile is None and self.features.remote is not None:  # a board over SSH: it says what it is
            self._profile = self.features.remote.profile()
        if self._profile is None:
            from pytest_edgeprof.device import resolve_device

            self._profile = resolve_device(self.settings.device)
        return self._profile

    @property
    def models(self) -> ModelCache:
        if self._models is None:
            from pytest_edgeprof.models.deploy.calibration import Calibration
            from pytest_edgeprof.models.deploy.deployer import Deployer
            from pytest_edgeprof.models.model_cache import ModelCache

            deployer = Deployer(Calibration(self.settings.calib_data))  # --calib-data: what int8 is calibrated on
            self._models = ModelCache(self.profile.torch_device, self.settings.eval_data, self.settings.eval_limit,
                                      deployer)
            self._models.warm_up_s = self.warm_up_s()
        return self._models

    def deployment_reasons(self) -> dict[tuple[str, str], str]:
        """Per precision and runtime of the grid that the device cannot run usefully, why (decided once)."""
        if self._unsupported is None:
            from pytest_edgeprof.models.deploy.support import unsupported

            grid, remote = self.grid(), self.features.remote
            check = remote.unsupported if remote is not None else lambda p, r: unsupported(self.profile, p, r)
            found = {(p, r): check(p, r) for p in grid.precisions for r in grid.runtimes}
            self._unsupported = {deployment: why for deployment, why in found.items() if why}
        return self._unsupported

    def deployment_reason(self, cell: Cell) -> str | None:
        return self.deployment_reasons().get((cell.precision, cell.runtime))

    @property
    def grid_built(self) -> bool:
        return self._grid is not None

    def grid(self) -> Grid:
        if self._grid is None:
            self._grid = self._build_grid()
        return self._grid

    def _build_grid(self) -> Grid:
        from pytest_edgeprof.models.grid import default_grid

        models = self._resolved_models()  # before the device, as when --models was checked with the options
        base = default_grid(self.profile, self.settings.grid)
        return replace(
            base,
            models=models or base.models,
            batch_sizes=self.settings.batch_sizes or base.batch_sizes,
            shapes=self.settings.shapes or base.shapes,
            precisions=self.settings.precisions or base.precisions,
            runtimes=self.settings.runtimes or base.runtimes,
        )

    def _resolved_models(self) -> tuple[str, ...] | None:
        """``--models`` checked against torchvision's registry, the error worded as an option's."""
        from pytest_edgeprof.models.grid import resolve_models

        if self.settings.models is None:
            return None
        try:
            return resolve_models(self.settings.models)
        except UsageError as exc:
            option = OPTIONS["models"]
            raise UsageError(f"{option.flag}/{option.ini}: {exc}") from None

    def variants(self) -> tuple[str, ...]:
        from pytest_edgeprof.models.prune import variant_name

        return ("base", *(variant_name(target) for target in self.settings.prune_targets))

    @property
    def where(self) -> str:
        """Where a cell's figures are for, in failure lines: ``cpu``, or ``jetson-nano (emulated on cpu)``."""
        emulation = self.features.emulation
        return emulation.where(self.profile) if emulation is not None else self.profile.name

    def device_budgets(self) -> dict[str, Budget]:
        """The device's own limit: its memory capacity is the default memory budget (under ``--emulate``,
        the memory a program can use on the target)."""
        from pytest_edgeprof.budgets import Budget
        from pytest_edgeprof.metrics import format_bytes

        emulation = self.features.emulation
        capacity = emulation.memory_capacity_bytes() if emulation is not None else self.profile.memory_bytes
        return {"memory": Budget("memory", float(capacity), format_bytes(capacity, like="GiB").replace(" ", ""))}

    def isolate_memory_limit(self) -> int | None:
        """What an isolated child may map: ``--isolate-memory-limit``, else what ``--emulate`` sets, else no limit."""
        emulation = self.features.emulation
        if self.settings.isolate_memory_limit is not None or emulation is None:
            return self.settings.isolate_memory_limit
        return emulation.isolate_memory_limit(self.profile)

    def model_ref(self, cell: Cell) -> ModelRef:
        from pytest_edgeprof.models.variants import ModelRef

        settings = self.settings
        return ModelRef(cell.model, settings.weights, cell.variant, settings.prune_method, settings.prune_cache,
                        settings.prune_data)

    def cell_key(self, test: str, cell: Cell, model_identity: dict[str, str], *, evaluated: bool) -> CellKey:
        """The key of what the test's cell measures in this run (``evaluated``: accuracy is measured for it)."""
        import torch

        from pytest_edgeprof.measurement import CellKey

        conditions = {"threads": str(torch.get_num_threads()), "timer": self.benchmark.timer,
                      "timed": str(self.benchmark.enabled), **self._deployment_conditions(cell),
                      **self.features.key_conditions(), **self._measuring_conditions()}
        evaluation = self.models.evaluation_identity() if evaluated else ""
        return CellKey(test, cell, self.profile.name, model_identity, evaluation, conditions)

    def _measuring_conditions(self) -> dict[str, str]:
        """The settings that change what a cell measures or how it ends, each only where it is not the
        default, so the keys of runs that leave them alone stay as they were: a child process and its memory
        limit, the stopping rule of the timed rounds, energy off, a cool-down (the emulated target is its
        feature plugin's key condition)."""
        settings, found = self.settings, {}
        if settings.isolate:  # a child's memory is the cell's alone, and it may run out at its limit
            limit = self.isolate_memory_limit()
            found["isolate"] = "child" if limit is None else f"child, memory limit {limit} bytes"
        if self.benchmark.enabled:
            rule = self.stopping_rule()
            if (rule.precision, rule.min_rounds, rule.max_time_s) != DEFAULT_RULE:
                found["rounds"] = f"within {rule.precision:g}, {rule.min_rounds} to {rule.max_time_s:g} s"
        if settings.no_energy:
            found["energy"] = "off"
        if settings.cooldown is not None:
            found["cooldown"] = repr(settings.cooldown)
        return found

    def _deployment_conditions(self, cell: Cell) -> dict[str, str]:
        """What else makes a deployment (the registry's key parts): the runtime's version, int8's calibration images."""
        conditions = RUNTIMES[cell.runtime].key_parts()
        if PRECISIONS[cell.precision].calibrated:
            conditions["calibration"] = self.models.deployer.calibration.identity()
        return conditions

    def stopping_rule(self) -> StoppingRule:
        """When a cell's timed rounds end: --latency-ci, --benchmark-min-rounds, --benchmark-max-time."""
        from pytest_edgeprof.measure.timing import StoppingRule

        ceiling = self.benchmark.max_time_s or DEFAULT_CEILING_S
        return StoppingRule(self.settings.latency_ci, self.benchmark.min_rounds, max_time_s=ceiling)

    def warm_up_s(self) -> float:
        """Warm-up's time bound: a --benchmark-max-time shorter than the usual 10 s bounds it too, so a
        slow forward under a short budget is not warmed for much longer than it is timed; never under
        1 s, so even a very short budget warms caches past their first calls."""
        from pytest_edgeprof.measure.timing import WARM_UP_MIN_S, WARM_UP_S

        given = self.benchmark.max_time_s
        return max(WARM_UP_MIN_S, min(WARM_UP_S, given)) if given else WARM_UP_S

    def energy_meter(self) -> EnergyMeter:
        """The best energy source for the device, opened once per session."""
        if self._energy_meter is None:
            from pytest_edgeprof.measure.energy import open_meter

            self._energy_meter = open_meter(self.profile, self.settings.no_energy)
        return self._energy_meter

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._energy_meter is not None:
            self._energy_meter.close()
        if self._models is not None:
            self._models.release()


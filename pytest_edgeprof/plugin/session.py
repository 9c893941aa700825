"""One pytest run's state: its settings, the resolved device, its models, its energy source and its log.

The device, the grid, the models, the energy meter and the log are made on first use: the plugin
makes a session in every pytest run, and a run without edgeprof tests must not pay for importing
torch, nor much for importing the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pytest_edgeprof.compat.pytest_benchmark import BenchmarkOptions
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.plugin.options import OPTIONS, Settings

if TYPE_CHECKING:
    from pytest_edgeprof.budgets import Budget
    from pytest_edgeprof.device import DeviceProfile
    from pytest_edgeprof.measurement import Cell, CellKey
    from pytest_edgeprof.plugin.runlog import RunLog


# The rounds' ceiling where --benchmark-max-time is not given: long enough for most CPU cells of the
# default grid to reach ±1 %, short enough that the grid's 12 cells finish in about two minutes.
DEFAULT_CEILING_S = 5.0
DEFAULT_RULE = (Settings.latency_ci, BenchmarkOptions.min_rounds, DEFAULT_CEILING_S)  # precision, min rounds, ceiling


@dataclass
class EdgeprofSession:
    settings: Settings
    benchmark: BenchmarkOptions = field(default_factory=BenchmarkOptions)
    compare_baseline: Any = None  # the saved run --edgeprof-compare-fail compares with (runs.saved.SavedRun)
    _profile: DeviceProfile | None = None
    _grid: Any = None  # models.grid.Grid, built on first use (it resolves the device and checks --models)
    _models: Any = None  # models.model_cache.ModelCache, made on first use (it imports torch)
    _energy_meter: Any = None  # measure.energy.EnergyMeter, opened on first use
    _unsupported: dict[tuple[str, str], str] | None = None  # (precision, runtime) -> why the device cannot
    _target: Any = None  # measure.emulation.Target under --emulate, resolved (host: probed) on first use
    _log: RunLog | None = None
    _peaks: dict[str, Any] = field(default_factory=dict)  # precision -> measure.peak.DevicePeak, probed on first use
    _cells_measured: int = 0
    _no_temperature_warned: bool = False

    @property
    def log(self) -> RunLog:
        if self._log is None:
            from pytest_edgeprof.plugin.runlog import RunLog

            self._log = RunLog(self.settings.journal, self.settings.resume)
        return self._log

    @property
    def has_log(self) -> bool:
        """Whether an edgeprof test has used the log (a run of plain tests never does)."""
        return self._log is not None

    @property
    def profile(self) -> DeviceProfile:
        if self._profile is None:
            from pytest_edgeprof.device import resolve_device

            self._profile = resolve_device(self.settings.device)
        return self._profile

    @property
    def device_resolved(self) -> bool:
        return self._profile is not None

    @property
    def models(self):  # -> models.model_cache.ModelCache
        if self._models is None:
            from pytest_edgeprof.models.model_cache import ModelCache

            from pytest_edgeprof.models.deploy.calibration import Calibration
            from pytest_edgeprof.models.deploy.deployer import Deployer

            deployer = Deployer(Calibration(self.settings.calib_data))  # --calib-data: what int8 is calibrated on
            self._models = ModelCache(self.profile.torch_device, self.settings.eval_data, self.settings.eval_limit,
                                      deployer)
        return self._models

    def configuration_reasons(self) -> dict[tuple[str, str], str]:
        """Per precision and runtime of the grid that the device cannot run usefully, why (decided once)."""
        if self._unsupported is None:
            from pytest_edgeprof.models.deploy.support import unsupported

            grid = self.grid()
            found = {(p, r): unsupported(self.profile, p, r) for p in grid.precisions for r in grid.runtimes}
            self._unsupported = {configuration: why for configuration, why in found.items() if why}
        return self._unsupported

    def configuration_reason(self, cell: Cell) -> str | None:
        return self.configuration_reasons().get((cell.precision, cell.runtime))

    @property
    def grid_built(self) -> bool:
        return self._grid is not None

    def grid(self):  # -> models.grid.Grid
        if self._grid is None:
            self._grid = self._build_grid()
        return self._grid

    def _build_grid(self):  # -> models.grid.Grid
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
    def target(self):  # -> measure.emulation.Target | None
        """The target ``--emulate`` names, None without it; ``host`` probes this machine's peaks (cached)."""
        if self._target is None and self.settings.emulate is not None:
            from pytest_edgeprof.measure.emulation import resolve_target

            self._target = resolve_target(self.settings.emulate, self.profile)
        return self._target

    @property
    def where(self) -> str:
        """Where a cell's figures are for, in failure lines: ``cpu``, or ``jetson-nano (emulated on cpu)``."""
        if self.settings.emulate is None:
            return self.profile.name
        return f"{self.settings.emulate} (emulated on {self.profile.name})"

    def device_budgets(self) -> dict[str, Budget]:
        """The device's own limit: its memory capacity is the default memory budget; under ``--emulate``,
        the memory a program can use on the target."""
        from pytest_edgeprof.budgets import Budget
        from pytest_edgeprof.metrics import format_bytes

        capacity = self.target.usable_memory_bytes if self.target is not None else self.profile.memory_bytes
        return {"memory": Budget("memory", float(capacity), format_bytes(capacity, like="GiB").replace(" ", ""))}

    def isolate_memory_limit(self) -> int | None:
        """What an isolated child may map: ``--isolate-memory-limit``, else under ``--emulate`` on a CPU the
        target's usable memory less its runtime overhead (the host holds no CUDA context), so a cell that would
        run out of memory on the target runs out here."""
        if self.settings.isolate_memory_limit is not None or self.target is None or self.profile.torch_device != "cpu":
            return self.settings.isolate_memory_limit
        return self.target.usable_memory_bytes - self.target.runtime_overhead_bytes

    def model_ref(self, cell: Cell):  # -> models.variants.ModelRef
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
                      **self._measuring_conditions()}
        evaluation = self.models.evaluation_identity() if evaluated else ""
        return CellKey(test, cell, self.profile.name, model_identity, evaluation, conditions)

    def _measuring_conditions(self) -> dict[str, str]:
        """The settings that change what a cell measures or how it ends, each only where it is not the
        default, so the keys of runs that leave them alone stay as they were: the emulated target, a child
        process and its memory limit, the stopping rule of the timed rounds, energy off, a cool-down."""
        settings, found = self.settings, {}
        if settings.emulate is not None:
            found["emulate"] = settings.emulate
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
        """What else makes a configuration: the runtime's version, the int8 calibration images."""
        conditions = {}
        if cell.runtime in ("onnxruntime", "tensorrt"):
            import onnxruntime

            conditions["onnxruntime"] = onnxruntime.__version__
        if cell.precision == "int8":
            conditions["calibration"] = self.models.deployer.calibration.identity()
        return conditions

    def stopping_rule(self):  # -> measure.timing.StoppingRule
        """When a cell's timed rounds end: --latency-ci, --benchmark-min-rounds, --benchmark-max-time."""
        from pytest_edgeprof.measure.timing import StoppingRule

        ceiling = self.benchmark.max_time_s or DEFAULT_CEILING_S
        return StoppingRule(self.settings.latency_ci, self.benchmark.min_rounds, max_time_s=ceiling)

    def peak(self, precision: str):  # -> measure.peak.DevicePeak | None
        """The device's achievable peak at ``precision``, probed before the first timed cell of that precision
        (then read from the per-machine cache); None under --benchmark-disable, where no cell has a latency to set
        against it, and for int8, which the GEMM probe does not measure."""
        from pytest_edgeprof.measure.peak import PRECISIONS, probe_peak

        if not self.benchmark.enabled or precision not in PRECISIONS:
            return None
        if precision not in self._peaks:
            self._peaks[precision] = probe_peak(self.profile.torch_device, precision)
        return self._peaks[precision]

    def peak_info(self) -> dict[str, Any]:
        """The peaks this run probed, for the saved run's machine info: {"peak": {precision: {...}}}; {} if none."""
        from dataclasses import asdict

        return {"peak": {precision: asdict(peak) for precision, peak in self._peaks.items()}} if self._peaks else {}

    def cool_down(self) -> dict[str, Any] | None:
        """``--cooldown`` before a cell is measured (not before the first): what the wait was, for its device_state;
        None where there was none. A temperature wait where none is readable is skipped, with one warning a run."""
        self._cells_measured += 1
        if self.settings.cooldown is None or self._cells_measured == 1:
            return None
        from pytest_edgeprof.measure.cooldown import cool_down

        record = cool_down(self.settings.cooldown)
        if "hottest_c" in record and record["hottest_c"] is None and not self._no_temperature_warned:
            import warnings

            self._no_temperature_warned = True
            warnings.warn(UserWarning(
                f"--cooldown until={record['until_c']:g}C: no thermal zone is readable here (/sys/class/thermal), "
                "so cells do not wait; give seconds instead, e.g. --cooldown 30"))
        return record

    def energy_meter(self):  # -> measure.energy.EnergyMeter
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


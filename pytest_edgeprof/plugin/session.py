"""Session state: the settings a run was started with, the resolved device, the current model,
the energy source, and what the run has learnt so far (out-of-memory batches, broken budgets)."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pytest_edgeprof.budgets import Budget, format_bytes
from pytest_edgeprof.device import DeviceProfile, resolve_device
from pytest_edgeprof.measure.energy import EnergyMeter, NoEnergyMeter, open_energy_meter
from pytest_edgeprof.models.grid import Grid, default_grid
from pytest_edgeprof.measurement import Cell, Measurement
from pytest_edgeprof.models.prune import PruneUnsupported, variant_name
from pytest_edgeprof.measure.timing import warm_up
from pytest_edgeprof.runs.journal import Journal, JournalEntry, entry_key
from pytest_edgeprof.models.variants import BuiltModel, ModelRef, build
from pytest_edgeprof.models.zoo import example_input, reference_input_shape


@dataclass(frozen=True)
class Settings:
    """What the user asked for, parsed and validated (command line over ini over defaults)."""

    device: str = "auto"
    grid: str = "default"
    models: tuple[str, ...] | None = None  # None: the grid's default
    batch_sizes: tuple[int, ...] | None = None
    shapes: tuple[tuple[int, int, int], ...] | None = None
    weights: str | None = None  # None: random initialisation
    budget_layers: tuple[dict[str, Budget], ...] = ()  # ini, then command line; later layers win
    journal: Path = Path(".benchmarks") / "edgeprof-journal.jsonl"
    resume: bool = False  # replay the cells the journal holds instead of measuring them again
    isolate: bool = False  # each cell in a fresh spawned child process
    isolate_memory_limit: int | None = None  # bytes an isolated child may map beyond its start
    no_energy: bool = False
    prune_targets: tuple[float, ...] = ()  # each adds a variant pNN to every model of the grid
    prune_method: str = "magnitude"
    prune_cache: Path | None = None
    prune_data: Path | None = None
    eval_data: Path | None = None  # an ImageFolder: adds top1/top5 per model, variant and shape
    eval_limit: int | None = None


@dataclass
class EdgeprofSession:
    settings: Settings
    _profile: DeviceProfile | None = None
    _model_ref: ModelRef | None = None
    _model: nn.Module | None = None
    _energy_meter: EnergyMeter | None = None
    benchmark_options: dict[str, Any] = field(default_factory=dict)  # pytest-benchmark's max_time, min_rounds
    _journal: Journal | None = None
    _resumable: dict[str, JournalEntry] = field(default_factory=dict)
    _variant_extras: dict[ModelRef, dict[str, Any]] = field(default_factory=dict)
    _unprunable: dict[ModelRef, str] = field(default_factory=dict)
    _accuracy: dict[tuple[ModelRef, tuple[int, int, int]], dict[str, Any]] = field(default_factory=dict)
    out_of_memory: dict[tuple[str, str, str, tuple[int, int, int]], int] = field(default_factory=dict)
    broken_budgets: list[tuple[str, list[str]]] = field(default_factory=list)  # (cell id, lines)
    # Cells without timings (out of memory, failed, skipped for capacity): pytest-benchmark saves only
    # timed ones, so they go to the saved run's "edgeprof": {"untimed_cells": [...]} section.
    untimed_cells: list[dict[str, Any]] = field(default_factory=list)
    compare_baseline: Any = None  # the saved run --edgeprof-compare-fail compares with (results.SavedRun)
    regressions: list[str] = field(default_factory=list)  # --edgeprof-compare-fail lines

    @property
    def profile(self) -> DeviceProfile:
        if self._profile is None:
            self._profile = resolve_device(self.settings.device)
        return self._profile

    def grid(self) -> Grid:
        base = default_grid(self.profile, self.settings.grid)
        return replace(
            base,
            models=self.settings.models or base.models,
            batch_sizes=self.settings.batch_sizes or base.batch_sizes,
            shapes=self.settings.shapes or base.shapes,
        )

    def variants(self) -> tuple[str, ...]:
        return ("base", *(variant_name(target) for target in self.settings.prune_targets))

    def device_budgets(self) -> dict[str, Budget]:
        """The device's own limit: its memory capacity is the default memory budget."""
        capacity = self.profile.memory_bytes
        return {"memory": Budget("memory", float(capacity), format_bytes(capacity, like="GiB").replace(" ", ""))}

    def model_ref(self, cell: Cell) -> ModelRef:
        settings = self.settings
        return ModelRef(cell.model, settings.weights, cell.variant, settings.prune_method, settings.prune_cache,
                        settings.prune_data)

    def build(self, ref: ModelRef) -> nn.Module:
        """The model on the session's device, built and warmed once per session, weights and variant.

        Only the current model is kept: the grid is model-major, and a model left on the device would
        count against the next model's memory (and may not fit beside it on a small board). A variant
        that cannot be pruned raises ``PruneUnsupported`` (remembered, so it is tried once).
        """
        if ref != self._model_ref:
            self._release_model()
            device = self.profile.torch_device
            built = self._build_once(ref, device)
            sample = example_input(1, reference_input_shape(ref.name), device)
            with torch.inference_mode():
                warm_up(lambda: built.model(sample), device)
            self._model_ref, self._model = ref, built.model
        assert self._model is not None
        return self._model

    def _build_once(self, ref: ModelRef, device: str) -> BuiltModel:
        """Build ``ref``, remembering what the variant is, or that it cannot be pruned (tried once)."""
        if ref in self._unprunable:
            raise PruneUnsupported(self._unprunable[ref])
        try:
            built = build(ref, device, progress=True)
        except PruneUnsupported as exc:
            self._unprunable[ref] = str(exc)
            raise
        self._variant_extras[ref] = built.extra
        return built

    def ref_of(self, model: nn.Module) -> ModelRef | None:
        """The reference of ``model`` if it is the session's current grid model."""
        return self._model_ref if model is self._model else None

    def prepare_variant(self, ref: ModelRef) -> None:
        """Prune (or find in the cache) a variant without keeping it, for a child process to load."""
        if ref.variant != "base" and ref not in self._variant_extras:
            self._build_once(ref, "cpu")

    def variant_extra(self, ref: ModelRef) -> dict[str, Any]:
        """What a built variant really is (prune_target, prune_achieved, ...); empty for base."""
        return self._variant_extras.get(ref, {})

    def accuracy(self, ref: ModelRef, input_shape: tuple[int, int, int]) -> dict[str, Any]:
        """top1/top5/eval_set of the variant at the shape on --eval-data, evaluated once per session."""
        key = (ref, input_shape)
        if key not in self._accuracy and self.settings.eval_data is not None:
            from pytest_edgeprof.models.accuracy import evaluate, image_folder_loader

            loader, eval_set = image_folder_loader(self.settings.eval_data, ref.name, input_shape,
                                                   limit=self.settings.eval_limit)
            model, device = self.build(ref), self.profile.torch_device
            self._accuracy[key] = evaluate(model, loader, device=device, eval_set=eval_set, progress=True).extra_info()
        return self._accuracy.get(key, {})

    @property
    def journal(self) -> Journal:
        """This run's journal, opened on first use: with ``resume`` the old one is read and appended to;
        otherwise it is moved aside to ``<journal>.prev`` and a new one starts."""
        if self._journal is None:
            journal = self._journal = Journal(self.settings.journal)
            if self.settings.resume:
                self._resumable = journal.read()
            elif journal.path.exists():
                journal.path.replace(journal.path.with_name(journal.path.name + ".prev"))
        return self._journal

    def journaled(self, cell: Cell) -> JournalEntry | None:
        """The journal's entry for this cell when resuming, else None."""
        if not self.settings.resume:
            return None
        self.journal  # noqa: B018 - reads the old journal on first use
        return self._resumable.get(self._key(cell))

    def journal_cell(self, cell: Cell, outcome: str, extra_info: dict[str, Any], rounds: list[float],
                     iterations: int, message: str) -> None:
        self.journal.append(JournalEntry(self._key(cell), outcome, extra_info, rounds, iterations, message))

    def _key(self, cell: Cell) -> str:
        return entry_key(self.profile.name, self.settings.weights, cell.id)

    def _release_model(self) -> None:
        self._model_ref = self._model = None
        gc.collect()
        if self._profile is not None and self._profile.is_cuda:
            torch.cuda.empty_cache()

    def energy_meter(self) -> EnergyMeter:
        """The best energy source for the device, opened once per session."""
        if self._energy_meter is None:
            self._energy_meter = open_meter(self.profile, self.settings.no_energy)
        return self._energy_meter

    def close(self) -> None:
        if self._energy_meter is not None:
            self._energy_meter.close()
        self._release_model()

    def record_out_of_memory(self, test: str, cell: Cell) -> None:
        """``test``: the test function's node id without its parameters (two tests may share a cell id)."""
        key = (test, cell.model, cell.variant, cell.input_shape)
        self.out_of_memory[key] = min(cell.batch_size, self.out_of_memory.get(key, cell.batch_size))

    def record_untimed(self, nodeid: str, extra_info: dict[str, Any]) -> None:
        self.untimed_cells.append({"fullname": nodeid, "extra_info": extra_info})

    def capacity_skip_reason(self, test: str, cell: Cell) -> str | None:
        """Why a cell need not run: a smaller batch of the same test, model, variant and shape ran out of memory."""
        failed = self.out_of_memory.get((test, cell.model, cell.variant, cell.input_shape))
        if failed is not None and cell.batch_size > failed:
            return f"exceeds capacity (b={failed} ran out of memory)"
        return None

    def record_broken(self, measurement: Measurement, lines: list[str]) -> None:
        self.broken_budgets.append((measurement.cell.id, lines))


def open_meter(profile: DeviceProfile, no_energy: bool = False) -> EnergyMeter:
    if no_energy:
        return NoEnergyMeter("not measured (--no-energy)")
    return open_energy_meter(profile.torch_device, jetson_model=profile.jetson_model)

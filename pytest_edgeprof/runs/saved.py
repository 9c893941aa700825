"""Reading saved runs: the JSON files pytest-benchmark writes, as edgeprof cells.

A run is what ``pytest --benchmark-json=FILE`` writes, or what ``--benchmark-autosave`` /
``--benchmark-save=NAME`` put under ``.benchmarks/<machine>/NNNN_<name>.json``. ``load_run`` finds one
the way ``pytest-benchmark compare`` does (a path, a run number, a name) or takes the latest, checks
that it is pytest-benchmark's and holds edgeprof cells, and returns a :class:`SavedRun` whose cells are
keyed by :attr:`Cell.id`. ``compare``, ``limits`` and ``report`` read nothing else.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_edgeprof.compat.pytest_benchmark import machine_id, storage_folder
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Cell, Measurement
from pytest_edgeprof.metrics import ENERGY, Metric
from pytest_edgeprof.outcome import Outcome

DEFAULT_STORAGE = Path(".benchmarks")
_RUN_FILE = re.compile(r"(?P<number>[0-9]{4})_.*\.json")
_IDENTITY_KEYS = ("model", "variant", "batch_size", "input_shape")

# --- saved cells and runs ------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedCell:
    """One edgeprof cell of a saved run: its Measurement and what pytest-benchmark stored beside it."""

    test: str  # pytest-benchmark's "fullname": the test's node id
    measurement: Measurement
    stats: Mapping[str, Any] = field(default_factory=dict)  # pytest-benchmark's timing stats in seconds; empty if never timed

    @property
    def cell(self) -> Cell:
        return self.measurement.cell

    @property
    def id(self) -> str:
        return self.cell.id

    @property
    def device(self) -> str:
        return self.measurement.device

    @property
    def outcome(self) -> Outcome:
        return self.measurement.outcome

    def value(self, metric: Metric | str) -> float | None:
        return self.measurement.value(metric)

    def label(self, metric: Metric) -> str:
        """The metric's label, with "(estimate)" where the cell's figure is one (an estimate is never
        presented as measured)."""
        energy = self.measurement.energy
        if metric is ENERGY and energy is not None and energy.is_estimate:
            return f"{metric.label} (estimate)"
        return metric.label


@dataclass(frozen=True)
class SavedRun:
    path: Path
    datetime: str  # when pytest-benchmark saved it (ISO 8601), "" if it did not say
    machine_info: Mapping[str, Any]
    device: str
    cells: dict[str, SavedCell] = field(default_factory=dict)
    commit_info: Mapping[str, Any] = field(default_factory=dict)  # pytest-benchmark's: id, branch, time, dirty

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def machine(self) -> str:
        return machine_name(self.machine_info)

    @property
    def when(self) -> str:
        """The save time to the minute, ``2025-01-02 10:11 UTC`` (pytest-benchmark saves UTC); "" if unknown."""
        text = self.datetime.replace("T", " ")[:16]
        return f"{text} UTC" if text and self.datetime.endswith(("+00:00", "Z")) else text

    def describe(self) -> str:
        """``.benchmarks/.../0003_baseline.json (device cpu, 2025-01-02 10:11 UTC)`` for headers."""
        return f"{self.path} (device {self.device or 'unknown'}{', ' + self.when if self.when else ''})"

    @classmethod
    def of(cls, path: Path, cells: list[SavedCell], datetime: str = "",
           machine_info: Mapping[str, Any] | None = None, commit_info: Mapping[str, Any] | None = None) -> SavedRun:
        """A run of these cells, keyed by cell id (a second test with the same id by ``id [test]``)."""
        keyed: dict[str, SavedCell] = {}
        for saved in cells:
            keyed[saved.id if saved.id not in keyed else f"{saved.id} [{saved.test}]"] = saved
        machine_info = machine_info or {}
        return cls(path, datetime, machine_info, _run_device(machine_info, keyed), keyed, commit_info or {})


def machine_name(machine_info: Mapping[str, Any]) -> str:
    """The machine a run is filed under (the results store, the dashboard): the name given with
    ``--edgeprof-machine``, else the board's identity, the GPU it ran on, the host's CPU (pytest-benchmark's
    cpu brand), its host name."""
    edgeprof = machine_info.get("edgeprof")
    edgeprof = edgeprof if isinstance(edgeprof, Mapping) else {}
    cpu = machine_info.get("cpu")
    cpu = cpu if isinstance(cpu, Mapping) else {}
    board = edgeprof.get("board")  # a board over SSH: what it reported of itself
    board = board.get("identity") if isinstance(board, Mapping) else board
    for candidate in (edgeprof.get("machine"), board, edgeprof.get("jetson_model"), edgeprof.get("gpu_name"),
                      cpu.get("brand_raw"), edgeprof.get("device_description"), machine_info.get("node")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return "unknown"


def load_run(ref: str | Path, storage: Path | str = DEFAULT_STORAGE) -> SavedRun:
    """The saved run ``ref`` names: a JSON file's path, a run number (``0001`` or ``1``), a name or
    fragment of a saved file's name (``baseline``), ``MACHINE/REF``, or ``latest``.

    Numbers and names are looked up under ``storage`` (a folder, or pytest-benchmark's
    ``--benchmark-storage`` URI ``file://./.benchmarks``) in every machine's folder. Where several files match, the newest (highest
    number) is taken; where they lie in several machines' folders, this machine's folder wins, else it
    is a UsageError listing them.
    """
    path = resolve_run_path(str(ref), storage_folder(storage))
    return parse_run(path, _read_json(path))


def resolve_run_path(ref: str, storage: Path) -> Path:
    """The file ``ref`` names (see :func:`load_run`)."""
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        return candidate
    if candidate.exists():
        raise UsageError(f"bad run {ref!r}: a folder, not a file; expected a JSON file, a run number like 0001, a name, or latest")
    if candidate.is_absolute() or ref.count("/") > 1:
        raise UsageError(f"no run file {ref!r}: no such file")
    machine_glob, _, name = ref.rpartition("/") if "/" in ref else ("*", "", ref)
    runs = [p for p in sorted(storage.glob(f"{machine_glob}/*.json")) if _RUN_FILE.fullmatch(p.name)]
    if not runs:
        raise UsageError(
            f"no run {ref!r}: not a file, and there are no saved runs under {storage}/ to look it up in "
            "(save runs with pytest --benchmark-autosave, or pass a --benchmark-json file)"
        )
    matches = runs if name == "latest" else _matching(name, runs)
    if not matches:
        latest = ", ".join(p.name for p in runs[-3:])
        raise UsageError(
            f"no run {ref!r}: not a file, and no saved run under {storage}/ matches it (latest: {latest}); "
            "expected a file, a run number, a name or latest"
        )
    return _newest(_one_machine(ref, matches))


def _matching(name: str, runs: list[Path]) -> list[Path]:
    if name.isdigit():
        number = f"{int(name):04d}"
        return [p for p in runs if p.name.startswith(number + "_")]
    prefix = [p for p in runs if p.name.startswith(name)]  # pytest-benchmark's own rule: a prefix glob
    return prefix or [p for p in runs if name in p.name]


def _one_machine(ref: str, matches: list[Path]) -> list[Path]:
    folders = {p.parent for p in matches}
    if len(folders) == 1:
        return matches
    here = [p for p in matches if p.parent.name == machine_id()]
    if here:
        return here
    listed = ", ".join(f"{p.parent.name}/{p.name}" for p in matches)
    raise UsageError(f"run {ref!r} matches files of several machines: {listed}; write MACHINE/{ref.split('/')[-1]}")


def _newest(matches: list[Path]) -> Path:
    return max(matches, key=lambda p: (_run_number(p), p.name))


def _run_number(path: Path) -> int:
    match = _RUN_FILE.fullmatch(path.name)
    assert match is not None  # the runs looked up are those whose names _RUN_FILE matched
    return int(match["number"])


def read_document(path: Path) -> Any:
    """A saved run's JSON document as loaded; UsageError naming the file where it cannot be read."""
    return _read_json(path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read run {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not a pytest-benchmark run: not valid JSON ({exc})") from None
    except RecursionError:  # json's decoder recurses once per level: a foreign file nested thousands deep
        raise UsageError(f"{path} is not a pytest-benchmark run: JSON nested too deeply to read") from None


def parse_run(path: Path, data: Any) -> SavedRun:
    """A SavedRun from the loaded JSON of ``path``; UsageError naming the file where it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise UsageError(f"{path} is not a pytest-benchmark run: no 'benchmarks' list at its top level")
    machine_info = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    commit_info = data.get("commit_info") if isinstance(data.get("commit_info"), dict) else {}
    benches = [*data["benchmarks"], *_untimed_cells(path, data)]
    cells = [saved for index, bench in enumerate(benches) if (saved := _saved_cell(path, index, bench)) is not None]
    if not cells:
        raise UsageError(
            f"{path} holds no edgeprof cells: none of its {len(data['benchmarks'])} benchmarks has the "
            "model/variant/batch_size/input_shape extra_info the edgeprof fixture saves"
        )
    return SavedRun.of(path, cells, str(data.get("datetime") or ""), machine_info, commit_info)


def _untimed_cells(path: Path, data: Mapping[str, Any]) -> list[Any]:
    """Cells that have no timings, so no entry in ``benchmarks`` (pytest-benchmark saves only timed
    ones, and its own loader needs their stats): out-of-memory and skipped cells, which the plugin
    lists under the top-level key ``"edgeprof": {"untimed_cells": [...]}``, each an ``extra_info``
    dict or a ``{"fullname": ..., "extra_info": {...}}`` object."""
    section = data.get("edgeprof")
    if section is None:
        return []
    untimed = section.get("untimed_cells", []) if isinstance(section, Mapping) else None
    if not isinstance(untimed, list):
        raise UsageError(f"{path}: its 'edgeprof' section has no 'untimed_cells' list")
    return [entry if isinstance(entry, Mapping) and "extra_info" in entry else {"extra_info": entry} for entry in untimed]


def _saved_cell(path: Path, index: int, bench: Any) -> SavedCell | None:
    if not isinstance(bench, dict):
        raise UsageError(f"{path}: benchmark #{index} is a {type(bench).__name__}, not an object")
    test = str(bench.get("fullname") or bench.get("name") or f"#{index}")
    info = bench.get("extra_info")
    if not isinstance(info, dict) or not any(key in info for key in _IDENTITY_KEYS):
        return None  # a plain pytest-benchmark test beside the edgeprof ones
    try:
        measurement = Measurement.from_extra_info(info)
    except UsageError as exc:
        raise UsageError(f"{path}: benchmark {test}: {exc}") from None
    stats = bench.get("stats")
    if not isinstance(stats, dict):
        stats = {}
    return SavedCell(test, measurement, stats)


def _run_device(machine_info: Mapping[str, Any], cells: Mapping[str, SavedCell]) -> str:
    edgeprof = machine_info.get("edgeprof")
    if isinstance(edgeprof, Mapping) and edgeprof.get("device"):
        return str(edgeprof["device"])
    devices = Counter(c.device for c in cells.values() if c.device)
    return ", ".join(device for device, _ in devices.most_common())


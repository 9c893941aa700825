"""The plugin's options and their ini twins, declared once, parsed into ``Settings``.

Each ``Option`` is a command-line flag and its ini key; its parser turns the text into the Settings
value and is imported only when a value is parsed. No parser imports torch or torchvision: the
plugin reads its options in every pytest run. ``--models`` is only split here; its names are checked
against torchvision's registry when the grid is built (``EdgeprofSession.grid``). A command-line
value wins over the ini key, which wins over the default.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgeprof.axes import DEFAULT_PRECISION, DEFAULT_RUNTIME, check_extras, precision_help, runtime_help
from pytest_edgeprof.compat.pytest_benchmark import storage_folder
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.paths import default_cache_dir, output_folder
from pytest_edgeprof.shared_options import DEVICE, SHAPE, WEIGHTS

if TYPE_CHECKING:
    from pytest_edgeprof.budgets import Budget
    from pytest_edgeprof.measure.cooldown import Cooldown
    from pytest_edgeprof.runs.store.url import StoreUrl

GROUP = "edgeprof"


@dataclass(frozen=True)
class Settings:
    """What the user asked for, parsed and validated (command line over ini over defaults)."""

    device: str = "auto"
    grid: str = "default"
    models: tuple[str, ...] | None = None  # as written (checked when the grid is built); None: the grid's default
    batch_sizes: tuple[int, ...] | None = None
    shapes: tuple[tuple[int, int, int], ...] | None = None
    precisions: tuple[str, ...] | None = None  # None: fp32
    runtimes: tuple[str, ...] | None = None  # None: eager
    calib_data: Path | None = None  # an ImageFolder int8 calibration reads; None: generated images
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
    eval_data: Path | None = None  # adds top1/top5, map or miou per model, variant and shape
    eval_limit: int | None = None
    columns: tuple[str, ...] | None = None  # the summary's metric columns; None: all that fit
    latency_ci: float = 0.01  # rounds go on until the median's 95 % interval is within this fraction of it
    emulate: str | None = None  # a device profile whose figures each cell also gets, predicted (measure/emulation.py)
    power_mode: str | None = None  # the emulated board's power mode (power_modes.py); None: its highest
    cooldown: Cooldown | None = None  # a pause, or a wait for a temperature, before every cell but the first
    store: StoreUrl | None = None  # the results store each finished run is written into
    machine: str | None = None  # the name runs are stored under; None: the board, GPU or CPU
    board_wait: float = 0.0  # seconds to wait for a labgrid place another holds (--device labgrid:...)
    ssh_config: Path | None = None  # an OpenSSH client config for every ssh call to a board (--device ssh://...)
    board_python: str = "python3"  # the board's Python that runs the worker


@dataclass(frozen=True)
class Option:
    """A command-line flag and its ini twin; ``parser`` names the function that turns the text into
    the Settings value (imported on use; none imports torch)."""

    flag: str
    ini: str
    metavar: str
    help: str
    parser: str = ""  # "module:function" in this package; empty: the text itself
    flag_only: bool = False  # a switch (store_true, ini bool) rather than a value

    def parse(self, text: str) -> Any:
        if not self.parser:
            return text
        module, function = self.parser.split(":")
        return getattr(importlib.import_module(f"pytest_edgeprof.{module}"), function)(text)


OPTIONS: dict[str, Option] = {
    "device": Option(DEVICE.flag, "edgeprof_device", DEVICE.metavar, "device to benchmark on: " + DEVICE.help("auto")
                     + "; or ssh://[user@]host[:port]: a board over SSH that runs each cell; or labgrid:PLACE or "
                     "labgrid:TAG=VALUE[,TAG=VALUE]: a shared board's place, held for the session (docs/remote.md)"),
    "grid": Option(
        "--grid", "edgeprof_grid", "NAME",
        "default: a grid sized for the device (on a CPU: vgg16, resnet50, mobilenet_v3_large x batch 1,4 x 224,160); "
        "study: the study's full grid, batch 1,8,16,32,64,128 x 224,192,160,112",
    ),
    "models": Option(
        "--models", "edgeprof_models", "NAMES", "comma list of torchvision classification models, e.g. resnet50,vgg16",
        "models.grid:split_models",
    ),
    "batch_sizes": Option(
        "--batch-sizes", "edgeprof_batch_sizes", "SIZES", "comma list of batch sizes, e.g. 1,8,32", "models.grid:parse_batch_sizes"
    ),
    "shapes": Option(
        "--shapes", "edgeprof_shapes", "SHAPES", f"comma list, each an {SHAPE.accepts}",
        "models.grid:parse_shapes",
    ),
    "precisions": Option(
        "--precision", "edgeprof_precision", "NAMES", precision_help(), "models.grid:parse_precisions",
    ),
    "runtimes": Option(
        "--runtime", "edgeprof_runtime", "NAMES", runtime_help(), "models.grid:parse_runtimes",
    ),
    "calib_data": Option(
        "--calib-data", "edgeprof_calib_data", "DIR",
        "an ImageFolder whose first images calibrate int8 quantization (default: generated images, and then "
        "accuracy at int8 means nothing)",
        "models.image_folder:parse_calib_data",
    ),
    "weights": Option(WEIGHTS.flag, "edgeprof_weights", WEIGHTS.metavar, WEIGHTS.help("random")),
    "budget": Option(
        "--budget", "edgeprof_budget", "SPEC",
        "resource budgets every cell must meet, e.g. memory=2.6GB,latency=50ms,p99=80ms,energy=0.5J,throughput=20ips,top1=70 "
        "(2.6GB = 2.6e9 bytes, 2.6GiB = 2.6 x 2^30). The ini key's budgets apply first, the command line's over them, "
        "a test's budget marker over both; the device's memory capacity is the default memory budget",
        "budgets:parse_budget_spec",
    ),
    "prune_targets": Option(
        "--prune", "edgeprof_prune", "TARGETS",
        "add, for every model, a variant per target with that fraction of its FLOPs removed by structured "
        "channel pruning (torch-pruning), e.g. 0.25,0.5 gives ids like resnet50-p50-b8-224x224; targets 0.05 to 0.8",
        "models.prune:parse_prune_targets",
    ),
    "prune_method": Option(
        "--prune-method", "edgeprof_prune_method", "METHOD",
        "channel importance: magnitude (default) or taylor (needs --prune-data)", "models.prune:check_method",
    ),
    "prune_data": Option(
        "--prune-data", "edgeprof_prune_data", "DIR", "an ImageFolder whose first images Taylor importance sees",
        "models.image_folder:parse_prune_data",
    ),
    "prune_cache": Option(
        "--prune-cache", "edgeprof_prune_cache", "DIR",
        "where pruned variants are cached (default: $XDG_CACHE_HOME/pytest-edgeprof/variants)", "models.prune:parse_cache_dir",
    ),
    "eval_data": Option(
        "--eval-data", "edgeprof_eval_data", "DIR",
        "an ImageFolder laid out like ImageNet's validation set (optional class_index.json): adds top1/top5 per "
        "model, variant and input shape, with the preprocessing of the model's weights; for detectors a folder with "
        "COCO's annotations.json (adds map), for segmenters one with images/ and masks/ (adds miou)",
        "models.image_folder:parse_eval_data",
    ),
    "eval_limit": Option(
        "--eval-limit", "edgeprof_eval_limit", "N", "evaluate only the first N images (eval_set says so)",
        "models.image_folder:parse_eval_limit",
    ),
    "latency_ci": Option(
        "--latency-ci", "edgeprof_latency_ci", "PERCENT",
        "timed rounds go on until the median latency's 95 %% confidence interval (distribution-free) is within "
        "this much of the median, e.g. 1%% (the default) or 0.5%%; --benchmark-max-time is the ceiling (5 s where not "
        "given), and a cell "
        "that reaches it first is saved with latency_stable false",
        "metrics:parse_latency_ci",
    ),
    "cooldown": Option(
        "--cooldown", "edgeprof_cooldown", "SECONDS|until=TEMP",
        "wait before each cell's warm-up and timed rounds (not the first cell's): SECONDS (30 or 2.5s), or "
        "until=50C: until the hottest readable thermal zone is at or below 50 C, at most 300 s (until=50C,max=120s "
        "sets that bound; where no temperature is readable: one warning, no wait); saved as device_state.cooldown",
        "measure.cooldown:parse_cooldown",
    ),
    "columns": Option(
        "--edgeprof-columns", "edgeprof_columns", "NAMES",
        "the metric columns of the table printed at the end of the run, in order, from latency, p99, target_latency, "
        "throughput, memory, target_memory, energy, flops, top1, map, miou, efficiency (target_: predicted under --emulate) "
        "(default: all; columns wider than the terminal are dropped, least important first); -q prints only the "
        "recommended configuration",
        "runs.summary:parse_columns",
    ),
    "no_energy": Option(
        "--no-energy", "edgeprof_no_energy", "",
        "do not measure energy (saves, per cell whose timed rounds are shorter, the window a measured source needs: "
        "1 s for NVML and Jetson rails; the CodeCarbon estimate takes the rounds' own time); energy_source is then 'none'",
        flag_only=True,
    ),
    "journal": Option(
        "--journal", "edgeprof_journal", "PATH",
        "the journal each finished cell is appended to at once (one JSON line, fsynced). "
        "Default: edgeprof-journal.jsonl in pytest-benchmark's storage folder (.benchmarks/)",
        "runs.journal:parse_journal_path",
    ),
    "resume": Option(
        "--resume", "edgeprof_resume", "",
        "replay the measured cells (passed or over budget) the journal holds under the same cell key (device, "
        "network and its code, weights, variant recipe, evaluation data, threads, timer, stopping rule, isolation) "
        "instead of measuring them again, judged by this run's budgets; failed and out-of-memory cells are measured "
        "again (a run killed halfway, resumed, saves every cell once)",
        flag_only=True,
    ),
    "isolate": Option(
        "--isolate", "edgeprof_isolate", "",
        "run each cell in a fresh spawned child process, so an out-of-memory kill, a segfault or a CUDA error "
        "loses only that cell (costs a process start and imports per cell)",
        flag_only=True,
    ),
    "emulate": Option(
        "--emulate", "edgeprof_emulate", "PROFILE",
        "measure each cell on this host as usual and predict its figures on a target device as well, saved beside the "
        "measured ones under their own target_ keys and labelled predicted: peak memory, latency (a per-kernel "
        "roofline), throughput, energy (an estimate from the power envelope). Budgets judge the predicted figures, and "
        "the target's usable memory is the default memory budget. host (this machine, its peaks probed) or "
        "jetson-nano, jetson-orin-nano, jetson-orin-nano-super, jetson-agx-xavier, rtx-3070, rtx-3060 (a board's "
        "latency: the fitted predictor of edgeprof predict, at --power-mode)",
        "device:parse_emulate",
    ),
    "power_mode": Option(
        "--power-mode", "edgeprof_power_mode", "MODE",
        "with --emulate BOARD: the board's nvpmodel power mode the predictions are for, e.g. 5W on a jetson-nano, "
        "7W on a jetson-orin-nano (default: the board's highest: MAXN, 15W, MAXN_SUPER)",
    ),
    "isolate_memory_limit": Option(
        "--isolate-memory-limit", "edgeprof_isolate_memory_limit", "SIZE",
        "with --isolate on a CPU: address space an isolated cell may map beyond its start, e.g. 2GB, "
        "to see where a smaller device's memory would end",
        "metrics:parse_bytes",
    ),
    "store": Option(
        "--edgeprof-store", "edgeprof_store", "URL",
        "write the finished run (every cell, machine and commit info) into a results store at the session's end: "
        "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE (needs pytest-edgeprof[store] or [postgresql])",
        "runs.store.url:parse_store_url",
    ),
    "machine": Option(
        "--edgeprof-machine", "edgeprof_machine", "NAME",
        "the machine name --edgeprof-store files the run under (default: the board, else the GPU, else the CPU)",
        "runs.store.url:parse_machine_name",
    ),
    "board_wait": Option(
        "--board-wait", "edgeprof_board_wait", "SECONDS",
        "with --device labgrid:PLACE or labgrid:TAG=VALUE: how long to wait for a place someone else holds "
        "(default 0: at once one line naming the holder and how to free it, exit 4); 30 or 2.5s",
        "remote.labgrid_place:parse_board_wait",
    ),
    "ssh_config": Option(
        "--ssh-config", "edgeprof_ssh_config", "FILE",
        "with --device ssh://...: an OpenSSH client config passed to every ssh call to the board (ssh -F FILE)",
        "remote.address:parse_ssh_config",
    ),
    "board_python": Option(
        "--board-python", "edgeprof_board_python", "PATH",
        "with --device ssh://...: the board's Python (3.6 or later) that runs the worker (default: python3)",
        "remote.address:parse_board_python",
    ),
}


def add_options(parser: pytest.Parser) -> None:
    """The edgeprof group: every option and its ini twin."""
    group = parser.getgroup(GROUP, "edgeprof: CNN benchmarks on edge devices")
    group.addoption(
        "--edgeprof-compare-fail", metavar="SPEC", default=None,
        help="with --benchmark-compare[=RUN]: fail the run when a cell regressed past a limit against that saved "
        "run, e.g. latency:10%%,memory:5%%,energy:10%%,top1:-0.5 (as edgeprof compare --fail)",
    )
    for option in OPTIONS.values():
        if option.flag_only:
            group.addoption(option.flag, action="store_true", default=None, help=option.help)
            parser.addini(option.ini, type="bool", help=_ini_help(option), default=False)
        else:
            group.addoption(option.flag, metavar=option.metavar, default=None, help=option.help)
            parser.addini(option.ini, help=_ini_help(option), default=None)


def _ini_help(option: Option) -> str:
    """The ini key's help: the option's, whose %% argparse would have turned into %."""
    return f"default for {option.flag}: {option.help}".replace("%%", "%")


def read_option(config: pytest.Config, name: str) -> str | None:
    """The command line's value, else the ini key's, else None."""
    option = OPTIONS[name]
    value = config.getoption(option.flag)
    if value is None:
        try:
            value = config.getini(option.ini) or None
        except pytest.UsageError as exc:  # pytest's bool parsing says "invalid truth value 'maybe'" without the key
            raise pytest.UsageError(f"{option.ini}: {exc}; accepted: true, false, yes, no, on, off, 1, 0") from None
    return value


def load_settings(config: pytest.Config) -> Settings:
    values: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        if name == "budget":
            continue
        text = read_option(config, name)
        if option.flag_only:
            values[name] = bool(text)
        elif text is not None:
            values[name] = _parse(option, text)
    _check_extras(values.get("precisions") or (DEFAULT_PRECISION,), values.get("runtimes") or (DEFAULT_RUNTIME,))
    if values.get("prune_method") == "taylor" and "prune_data" not in values:
        raise pytest.UsageError("--prune-method taylor needs --prune-data DIR, an ImageFolder of labelled images")
    if values.get("power_mode") is not None and values.get("emulate") is None:
        raise pytest.UsageError("--power-mode/edgeprof_power_mode: a board's power mode is predicted only; give it "
                                "with --emulate BOARD")
    if "journal" not in values:  # checked up front like --journal: a folder this user can write in
        storage = storage_folder(config.getoption("benchmark_storage", None))
        journal = str(storage / "edgeprof-journal.jsonl")
        values["journal"] = _default_path(lambda: _journal_path(journal, "the default journal"), "--journal PATH")
    if values.get("prune_targets") and values.get("prune_cache") is None:
        cache = str(default_cache_dir())
        values["prune_cache"] = _default_path(lambda: output_folder(cache, "the default variant cache", "pruned variants"),
                                              "--prune-cache DIR")
    budget = OPTIONS["budget"]
    layers = [config.getini(budget.ini) or None, config.getoption(budget.flag)]  # ini first, command line over it
    values["budget_layers"] = tuple(_parse(budget, text) for text in layers if text)
    return Settings(**values)


def _journal_path(text: str, option: str) -> Path:
    from pytest_edgeprof.runs.journal import parse_journal_path

    return parse_journal_path(text, option)


def _check_extras(precisions: tuple[str, ...], runtimes: tuple[str, ...]) -> None:
    try:
        check_extras(precisions, runtimes)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _default_path(check: Callable[[], Path], option: str) -> Path:
    """A default path checked as the option that overrides it is (``paths.py``), the option named."""
    try:
        return check()
    except UsageError as exc:
        raise pytest.UsageError(f"{exc} ({option})") from None


WALL_CLOCKS = ("time.perf_counter",)  # CPU rounds are latencies only on a wall clock


def run_conditions_refusal(config: pytest.Config, timer: str) -> str | None:
    """What edgeprof cannot measure under, in one line: a timer that is not a wall clock, several xdist
    workers (seen in each worker, whose own options say nothing of -n); None where it can measure."""
    if timer not in WALL_CLOCKS:
        return (f"--benchmark-timer {timer}: edgeprof times CPU rounds as latencies, which needs a "
                f"wall clock; accepted: {', '.join(WALL_CLOCKS)} (the default)")
    worker_input = getattr(config, "workerinput", None)
    workers = worker_input.get("workercount") if worker_input else config.getoption("numprocesses", None)
    if workers or config.getoption("dist", "no") != "no":
        return (f"-n {workers}: pytest-xdist runs tests in several processes, where pytest-benchmark "
                "turns itself off and cells would share the device; run edgeprof without -n")
    return None


def options_given(config: pytest.Config) -> bool:
    """Whether the run asks for edgeprof by an option or an ini key: it is then engaged before collection."""
    return bool(config.getoption("edgeprof_compare_fail")) or any(
        read_option(config, name) is not None for name in OPTIONS)


def _parse(option: Option, text: str) -> Any:
    try:
        return option.parse(text)
    except UsageError as exc:
        raise pytest.UsageError(f"{option.flag}/{option.ini}: {exc}") from None

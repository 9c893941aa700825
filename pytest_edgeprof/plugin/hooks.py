"""pytest hooks only: options and ini keys, markers, fixtures, test generation, reports, machine info.

Measuring lives in the other modules; this one wires them to pytest.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgeprof.errors import UsageError

if TYPE_CHECKING:
    from pytest_edgeprof.budgets import Budget
    from pytest_edgeprof.plugin.session import EdgeprofSession, Settings

GROUP = "edgeprof"


@dataclass(frozen=True)
class Option:
    """A command-line flag and its ini twin; ``parser`` names the function that turns the text into
    the Settings value (imported on use, so ``pytest --help`` does not import torch)."""

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
    "device": Option(
        "--device", "edgeprof_device", "DEVICE",
        "device to benchmark on: auto (CUDA if present, else CPU), cpu, cuda, cuda:N, jetson "
        "(detected from /proc/device-tree/model) or a profile such as jetson-nano, jetson-orin-nano. Default: auto",
    ),
    "grid": Option(
        "--grid", "edgeprof_grid", "NAME",
        "default: a grid sized for the device (on a CPU: vgg16, resnet50, mobilenet_v3_large x batch 1,4 x 224,160); "
        "study: the study's full grid, batch 1,8,16,32,64,128 x 224,192,160,112",
    ),
    "models": Option(
        "--models", "edgeprof_models", "NAMES", "comma list of torchvision classification models, e.g. resnet50,vgg16",
        "models.grid:parse_models",
    ),
    "batch_sizes": Option(
        "--batch-sizes", "edgeprof_batch_sizes", "SIZES", "comma list of batch sizes, e.g. 1,8,32", "models.grid:parse_batch_sizes"
    ),
    "shapes": Option(
        "--shapes", "edgeprof_shapes", "SHAPES", "comma list of input sizes: 224 (square) or 224x160 (height x width)",
        "models.grid:parse_shapes",
    ),
    "weights": Option(
        "--weights", "edgeprof_weights", "WEIGHTS",
        "random (default), a weights name such as DEFAULT that is already in the torch cache, or a state-dict path; never downloads",
    ),
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
        "models.accuracy:parse_prune_data",
    ),
    "prune_cache": Option(
        "--prune-cache", "edgeprof_prune_cache", "DIR",
        "where pruned variants are cached (default: $XDG_CACHE_HOME/pytest-edgeprof/variants)", "models.prune:parse_cache_dir",
    ),
    "eval_data": Option(
        "--eval-data", "edgeprof_eval_data", "DIR",
        "an ImageFolder laid out like ImageNet's validation set (optional class_index.json): adds top1/top5 per "
        "model, variant and input shape, with the preprocessing of the model's weights",
        "models.accuracy:parse_image_folder",
    ),
    "eval_limit": Option(
        "--eval-limit", "edgeprof_eval_limit", "N", "evaluate only the first N images (eval_set says so)",
        "models.accuracy:parse_eval_limit",
    ),
    "no_energy": Option(
        "--no-energy", "edgeprof_no_energy", "",
        "do not measure energy (saves the source's minimum window per cell: 3 s for the CodeCarbon estimate, "
        "1 s for NVML and Jetson rails); energy_source is then 'none'",
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
        "replay the cells the journal already holds for this device and weights instead of measuring them "
        "again (a run killed halfway, resumed, saves every cell once)",
        flag_only=True,
    ),
    "isolate": Option(
        "--isolate", "edgeprof_isolate", "",
        "run each cell in a fresh spawned child process, so an out-of-memory kill, a segfault or a CUDA error "
        "loses only that cell (costs a process start and imports per cell)",
        flag_only=True,
    ),
    "isolate_memory_limit": Option(
        "--isolate-memory-limit", "edgeprof_isolate_memory_limit", "SIZE",
        "with --isolate on a CPU: address space an isolated cell may map beyond its start, e.g. 2GB, "
        "to see where a smaller device's memory would end",
        "budgets:parse_bytes",
    ),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "edgeprof: CNN benchmarks on edge devices")
    group.addoption(
        "--edgeprof-compare-fail", metavar="SPEC", default=None,
        help="with --benchmark-compare[=RUN]: fail the run when a cell regressed past a limit against that saved "
        "run, e.g. latency:10%%,memory:5%%,energy:10%%,top1:-0.5 (as edgeprof compare --fail)",
    )
    for option in OPTIONS.values():
        if option.flag_only:
            group.addoption(option.flag, action="store_true", default=None, help=option.help)
            parser.addini(option.ini, type="bool", help=f"default for {option.flag}: {option.help}", default=False)
        else:
            group.addoption(option.flag, metavar=option.metavar, default=None, help=option.help)
            parser.addini(option.ini, help=f"default for {option.flag}: {option.help}", default=None)


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
    from pytest_edgeprof.plugin.session import Settings

    values: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        if name == "budget":
            continue
        text = read_option(config, name)
        if option.flag_only:
            values[name] = bool(text)
        elif text is not None:
            values[name] = _parse(option, text)
    if values.get("prune_method") == "taylor" and "prune_data" not in values:
        raise pytest.UsageError("--prune-method taylor needs --prune-data DIR, an ImageFolder of labelled images")
    if "journal" not in values:
        values["journal"] = _benchmark_storage(config) / "edgeprof-journal.jsonl"
    budget = OPTIONS["budget"]
    layers = [config.getini(budget.ini) or None, config.getoption(budget.flag)]  # ini first, command line over it
    values["budget_layers"] = tuple(_parse(budget, text) for text in layers if text)
    return Settings(**values)


def _benchmark_storage(config: pytest.Config) -> Path:
    """pytest-benchmark's storage folder (``--benchmark-storage``, default ``file://./.benchmarks``)."""
    storage = config.getoption("benchmark_storage", None) or "file://./.benchmarks"
    return Path(storage[len("file://"):] if storage.startswith("file://") else ".benchmarks")


def _parse(option: Option, text: str) -> Any:
    try:
        return option.parse(text)
    except UsageError as exc:
        raise pytest.UsageError(f"{option.flag}/{option.ini}: {exc}") from None


SESSION = pytest.StashKey["EdgeprofSession"]()
BUDGET_MARKER = (
    "budget(memory=None, latency=None, p99=None, energy=None, throughput=None, top1=None, top5=None): "
    "resource budgets for this test's cells, e.g. @pytest.mark.budget(memory='2.6GB', latency='50ms'); "
    "units: B/kB/MB/GB or KiB/MiB/GiB, us/ms/s, mJ/J, ips, percent for top1/top5"
)


def pytest_configure(config: pytest.Config) -> None:
    from pytest_edgeprof.plugin.session import EdgeprofSession

    config.addinivalue_line("markers", BUDGET_MARKER)
    session = config.stash[SESSION] = EdgeprofSession(load_settings(config))
    session.compare_baseline = load_compare_baseline(config)
    session.benchmark_options = {
        "max_time": float(config.getoption("benchmark_max_time", None) or 1.0),
        "min_rounds": int(config.getoption("benchmark_min_rounds", None) or 5),
    }
    if read_option(config, "device") is not None or session.settings.grid != "default":
        _grid(session)  # an explicit --device the host lacks is a usage error before anything runs


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def _grid(session: EdgeprofSession):  # -> grid.Grid, resolving the device
    try:
        return session.grid()
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def marker_budgets(item: pytest.Item) -> dict[str, Budget]:
    """The budgets of the test's ``budget`` markers (the closest marker wins per metric)."""
    from pytest_edgeprof.budgets import parse_budget

    budgets: dict[str, Budget] = {}
    for marker in reversed(list(item.iter_markers("budget"))):
        if marker.args:
            raise pytest.UsageError(f"{item.nodeid}: budget marker takes keywords only, e.g. budget(memory='2.6GB')")
        for metric, value in marker.kwargs.items():
            try:
                budgets[metric] = parse_budget(metric, value)
            except UsageError as exc:
                raise pytest.UsageError(f"{item.nodeid}: budget marker: {exc}") from None
    return budgets


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker_budgets(item)  # a bad budget marker stops the run before anything is measured
    cells = [cell for cell in map(_cell_of, items) if cell is not None]
    if cells:
        check_grid(config.stash[SESSION].settings.weights, cells)


def _cell_of(item: pytest.Item):  # -> measurement.Cell | None
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("edgeprof_cell") if callspec else None


def check_grid(weights: str | None, cells: list) -> None:
    """What the grid asks of each model, checked before anything is measured: that its ``--weights``
    can be found, and that it takes each input shape (counted on meta tensors, no real compute)."""
    from pytest_edgeprof.measure.flops import check_model_input
    from pytest_edgeprof.models.zoo import check_weights

    try:
        for model in dict.fromkeys(cell.model for cell in cells):
            check_weights(model, weights)
        for model, shape in dict.fromkeys((cell.model, cell.input_shape) for cell in cells):
            try:
                check_model_input(model, shape)
            except UsageError as exc:
                raise UsageError(f"--shapes: {exc}") from None
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str:
    session = config.stash[SESSION]
    _grid(session)  # resolves the device (a usage error where the host lacks it)
    return f"edgeprof: device {session.profile.name} ({session.profile.description})"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edgeprof_cell" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION]
    cells = _grid(session).cells(session.variants())
    metafunc.parametrize("edgeprof_cell", cells, ids=[cell.id for cell in cells])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    cell = _cell_of(item)
    if cell is not None:
        session = item.config.stash[SESSION]
        reason = session.capacity_skip_reason(item.nodeid.split("[")[0], cell)
        if reason:
            skipped = {**cell.identity(session.profile.name), "outcome": "skipped", "error": reason}
            session.record_untimed(item.nodeid, skipped)
            pytest.skip(reason)
    with _stop_on_usage_error(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _stop_on_usage_error(item):
        return (yield)


EDGEPROF_FIXTURES = frozenset({"edgeprof", "edgeprof_model", "edgeprof_cell"})


@contextmanager
def _stop_on_usage_error(item: pytest.Item) -> Iterator[None]:
    """Bad input found only mid-run in an edgeprof test (a weights file that is no state dict, an
    unreadable image, labels beyond the model's classes) stops the session with the usage exit code and
    one line. Cells measured before it stay in the journal, and pytest-benchmark still saves them when
    the session ends. Other tests are left alone: their exceptions are theirs."""
    try:
        yield
    except UsageError as exc:
        if EDGEPROF_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            raise
        journal = item.config.stash[SESSION].settings.journal
        pytest.exit(f"{exc} (stopped at {item.nodeid}; the cells measured before it are in {journal})",
                    returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash[SESSION]
    if state.regressions:
        terminalreporter.write_sep("=", "edgeprof: regressions past --edgeprof-compare-fail", red=True, bold=True)
        for line in state.regressions:
            terminalreporter.write_line(line)
    broken = state.broken_budgets
    if not broken:
        return
    terminalreporter.write_sep("=", "edgeprof: broken budgets", red=True, bold=True)
    width = max(len(cell_id) for cell_id, _ in broken)
    terminalreporter.write_line(f"{'cell':<{width}}  broken budget")
    for cell_id, lines in broken:
        for line in lines:
            terminalreporter.write_line(f"{cell_id:<{width}}  {line.rsplit(' (', 1)[0]}")


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict[str, Any]) -> None:
    untimed = config.stash[SESSION].untimed_cells
    if untimed:
        output_json["edgeprof"] = {"untimed_cells": untimed}


def load_compare_baseline(config: pytest.Config) -> Any:  # -> results.SavedRun | None
    """``--edgeprof-compare-fail``'s baseline: the run ``--benchmark-compare`` names, read before this run is saved."""
    spec = config.getoption("edgeprof_compare_fail")
    if not spec:
        return None
    from pytest_edgeprof.runs.compare import parse_fail_spec
    from pytest_edgeprof.runs.saved import load_run

    compare = config.getoption("benchmark_compare", None)
    if not compare:
        raise pytest.UsageError("--edgeprof-compare-fail needs --benchmark-compare[=RUN], the run to compare with")
    try:
        parse_fail_spec(spec)
        return load_run(compare if isinstance(compare, str) else "latest", config.getoption("benchmark_storage"))
    except UsageError as exc:
        raise pytest.UsageError(f"--edgeprof-compare-fail: {exc}") from None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """``--edgeprof-compare-fail``: fail the run when a cell regressed against the baseline."""
    state = session.config.stash[SESSION]
    benchmark_session = getattr(session.config, "_benchmarksession", None)
    if state.compare_baseline is None or benchmark_session is None:
        return
    from pytest_edgeprof.runs.compare import parse_fail_spec, regressions
    from pytest_edgeprof.runs.saved import parse_run

    current = parse_run(Path("this run"), {
        "benchmarks": [bench.as_dict(include_data=False) for bench in benchmark_session.benchmarks if bench],
        "edgeprof": {"untimed_cells": state.untimed_cells},
    })
    found = regressions(state.compare_baseline, current, parse_fail_spec(session.config.getoption("edgeprof_compare_fail")))
    state.regressions = [regression.line() for regression in found]
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from pytest_edgeprof.device import machine_info as device_machine_info

    machine_info["edgeprof"] = device_machine_info(config.stash[SESSION].profile)


@pytest.fixture(scope="session")
def edgeprof_device(pytestconfig: pytest.Config):
    """The resolved device profile (``--device``): name, torch device, memory capacity, power envelope."""
    session = pytestconfig.stash[SESSION]
    try:
        return session.profile
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture
def edgeprof_model(pytestconfig: pytest.Config, edgeprof_cell):
    """The cell's torchvision model on the device, in eval mode, built once per session and weights
    (``--weights``) and warmed up until its timings settle. Under ``--isolate``, and for a cell that
    ``--resume`` replays, it is a ``ModelRef`` (name, weights, variant) that is built where it runs."""
    from pytest_edgeprof.models.prune import PruneUnsupported

    session = pytestconfig.stash[SESSION]
    ref = session.model_ref(edgeprof_cell)
    if session.journaled(edgeprof_cell) is not None:
        return ref
    try:
        if session.settings.isolate:
            session.prepare_variant(ref)  # pruned here once, loaded from the cache by each child
            return ref
        return session.build(ref)
    except PruneUnsupported as exc:
        pytest.skip(f"{edgeprof_cell.model} cannot be pruned: {exc}")


@pytest.fixture
def edgeprof(request: pytest.FixtureRequest, benchmark, edgeprof_device):
    """Device-aware timer around pytest-benchmark's ``benchmark``: ``edgeprof(model, cell=...)`` or
    ``edgeprof(model, batch_size=4, input_shape=(3, 64, 64))`` warms up, times with CUDA events or
    perf_counter, measures peak memory, energy and FLOPs, saves the DESIGN.md keys in ``extra_info``,
    and fails the test when a budget (device memory, ``--budget``, ``budget`` marker) is broken."""
    from pytest_edgeprof.budgets import merge_budgets
    from pytest_edgeprof.plugin.fixture import EdgeprofTimer

    session = request.config.stash[SESSION]
    budgets = merge_budgets(session.device_budgets(), *session.settings.budget_layers, marker_budgets(request.node))
    return EdgeprofTimer(benchmark, session, budgets)

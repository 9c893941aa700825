"""pytest hooks only: the plugin's hooks and fixtures, wiring the other modules to pytest.

Options and ini keys live in ``options.py``, markers in ``markers.py``, the run's state in
``session.py`` and ``runlog.py``, the timer fixture's object in ``fixture.py``; measuring lives in
``measure/``, reading runs back in ``runs/``.

pytest loads this module in every run of the environment, tests of edgeprof or not, and ``pytest
--help`` runs ``pytest_configure``. So loading and configuring import no torch: the device and the
grid are resolved just before collection when the user set one of their options, else when an
edgeprof test is collected; the models and the meters on first use of a fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgeprof.compat import pytest_benchmark
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.plugin.markers import marker_budgets, marker_help
from pytest_edgeprof.plugin.options import add_options, check_run_conditions, load_settings, read_option

if TYPE_CHECKING:
    from pytest_edgeprof.plugin.session import EdgeprofSession

SESSION = pytest.StashKey["EdgeprofSession"]()
GRID_ASKED = pytest.StashKey[bool]()  # --device, --grid or --models (or their ini keys) was set
DEVICE_SHOWN = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from pytest_edgeprof.plugin.session import EdgeprofSession

    config.addinivalue_line("markers", marker_help("budget"))
    benchmark = pytest_benchmark.options(config)
    check_run_conditions(config, benchmark.timer)
    session = config.stash[SESSION] = EdgeprofSession(load_settings(config), benchmark)
    session.compare_baseline = load_compare_baseline(config)
    settings = session.settings
    config.stash[GRID_ASKED] = read_option(config, "device") is not None or settings.grid != "default" or settings.models is not None


def pytest_sessionstart(session: pytest.Session) -> None:
    """A device the host lacks, an unknown grid or model the user asked for: a usage error (exit 4)
    before collection. A run that set none of them resolves nothing until an edgeprof test needs it."""
    state = session.config.stash[SESSION]
    if session.config.stash[GRID_ASKED]:
        _grid(state)
    if state.settings.emulate is not None:  # the host's peaks are probed now, before anything is timed
        try:
            state.target  # noqa: B018 - resolves the target once
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def _grid(session: EdgeprofSession):  # -> grid.Grid, resolving the device
    try:
        return session.grid()
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


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


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """The device, where it is resolved by now (the user set it); else it is shown after collection."""
    return _device_line(config) if config.stash[SESSION].device_resolved else None


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str] | None:
    """The device line, once an edgeprof test is collected, where the header could not show it
    (resolving ``auto`` imports torch, which a run of plain tests must not pay for)."""
    if config.stash.get(DEVICE_SHOWN, False) or config.get_verbosity() < 0:
        return None
    if not any(not DEVICE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())) for item in items):
        return None
    return _device_line(config)


def _configuration_lines(config: pytest.Config) -> list[str]:
    """Said once, up front: the grid's precisions and runtimes the device cannot run usefully (their cells
    are skipped), and int8 calibrated on generated images."""
    session = config.stash[SESSION]
    lines = [f"edgeprof: {precision} {runtime} skipped on {session.profile.name}: {why}"
             for (precision, runtime), why in session.configuration_reasons().items()]
    if "int8" in session.grid().precisions and session.settings.calib_data is None:
        lines.append("edgeprof: int8 is calibrated on generated images, so its accuracy means nothing "
                     "(--calib-data DIR: an ImageFolder of real ones)")
    return lines


def _device_line(config: pytest.Config) -> list[str]:
    session = config.stash[SESSION]
    try:
        profile = session.profile
        lines = [f"edgeprof: device {profile.name} ({profile.description})"]
        if config.stash[GRID_ASKED] or session.grid_built:
            lines += _configuration_lines(config)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[DEVICE_SHOWN] = True
    if session.settings.emulate is not None:
        lines[0] += f"; emulating {session.settings.emulate}: its figures are predicted (target_ keys), not measured"
    return lines


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
        reason = session.configuration_reason(cell) or session.log.capacity_skip_reason(item.nodeid.split("[")[0], cell)
        if reason:
            from pytest_edgeprof.measurement import Measurement
            from pytest_edgeprof.outcome import Outcome

            session.log.record_skipped(item.nodeid, Measurement(cell, session.profile.name, Outcome.SKIPPED, reason))
            pytest.skip(reason)
    with _stop_on_usage_error(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _stop_on_usage_error(item):
        return (yield)


EDGEPROF_FIXTURES = frozenset({"edgeprof", "edgeprof_model", "edgeprof_cell"})
DEVICE_FIXTURES = EDGEPROF_FIXTURES | {"edgeprof_device"}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session):
    """Around the tests. Before the first, where an edgeprof test will run, the journal is taken: one held by
    another run, or whose lock cannot be written, stops the run with one line before anything is measured (a
    run of plain tests makes no journal). After the last, a run whose cells all failed or were skipped is still
    saved by pytest-benchmark, with its untimed cells."""
    state = session.config.stash[SESSION]
    if _runs_edgeprof_tests(session):
        try:
            state.log.open_journal()
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
    try:
        return (yield)
    finally:
        if state.has_log and state.log.untimed_cells():
            pytest_benchmark.save_without_timings(session.config)


def _runs_edgeprof_tests(session: pytest.Session) -> bool:
    option = session.config.option
    if option.collectonly or (session.testsfailed and not option.continue_on_collection_errors):
        return False  # no test will run
    return any(not EDGEPROF_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())) for item in session.items)


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
    session = config.stash[SESSION]
    if not session.has_log:
        return
    log = session.log
    if log.regressions:
        terminalreporter.write_sep("=", "edgeprof: regressions past --edgeprof-compare-fail", red=True, bold=True)
        for line in log.regressions:
            terminalreporter.write_line(line)
    _write_broken_budgets(terminalreporter, log.broken_budgets)
    if log.results:
        _write_answer(terminalreporter, session, quiet=config.get_verbosity() < 0)


def _write_answer(terminalreporter, session: EdgeprofSession, quiet: bool) -> None:
    """The run's cells as one table, the recommended configuration and what did not fit."""
    import shutil

    from pytest_edgeprof.runs import summary

    width = shutil.get_terminal_size((100, 24)).columns
    columns = session.settings.columns or summary.DEFAULT_COLUMNS
    terminalreporter.write_sep("=", f"edgeprof: {session.where}", bold=True)
    for line in summary.render(session.log.as_saved_run(), width=width, columns=columns, quiet=quiet):
        terminalreporter.write_line(line)


def _write_broken_budgets(terminalreporter, broken: list[tuple[str, list[str]]]) -> None:
    if not broken:
        return
    terminalreporter.write_sep("=", "edgeprof: broken budgets", red=True, bold=True)
    width = max(len(cell_id) for cell_id, _ in broken)
    terminalreporter.write_line(f"{'cell':<{width}}  broken budget")
    for cell_id, lines in broken:
        for line in lines:
            terminalreporter.write_line(f"{cell_id:<{width}}  {line.rsplit(f' ({cell_id} on ', 1)[0]}")


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict[str, Any]) -> None:
    session = config.stash[SESSION]
    untimed = session.log.untimed_cells() if session.has_log else []
    if untimed:
        output_json["edgeprof"] = {"untimed_cells": untimed}


def load_compare_baseline(config: pytest.Config) -> Any:  # -> runs.saved.SavedRun | None
    """``--edgeprof-compare-fail``'s baseline: the run ``--benchmark-compare`` names, read before this run is saved."""
    spec = config.getoption("edgeprof_compare_fail")
    if not spec:
        return None
    from pytest_edgeprof.runs.compare import parse_fail_spec
    from pytest_edgeprof.runs.saved import load_run

    options = pytest_benchmark.options(config)
    if not options.compare:
        raise pytest.UsageError("--edgeprof-compare-fail needs --benchmark-compare[=RUN], the run to compare with")
    try:
        parse_fail_spec(spec)
        return load_run(options.compare if isinstance(options.compare, str) else "latest", options.storage_uri)
    except UsageError as exc:
        raise pytest.UsageError(f"--edgeprof-compare-fail: {exc}") from None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """``--edgeprof-compare-fail``: fail the run when a cell regressed against the baseline."""
    state = session.config.stash[SESSION]
    if state.compare_baseline is None:
        return
    from pytest_edgeprof.runs.compare import parse_fail_spec, regressions

    thresholds = parse_fail_spec(session.config.getoption("edgeprof_compare_fail"))
    found = regressions(state.compare_baseline, state.log.as_saved_run(), thresholds)
    state.log.regressions = [regression.line() for regression in found]
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from pytest_edgeprof.device import machine_info as device_machine_info

    session = config.stash[SESSION]
    machine_info["edgeprof"] = {**device_machine_info(session.profile), **session.peak_info()}


@pytest.fixture(scope="session")
def edgeprof_device(pytestconfig: pytest.Config):
    """The resolved device profile (``--device``): name, torch device, memory capacity, power envelope."""
    session = pytestconfig.stash[SESSION]
    try:
        return session.profile
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture
def edgeprof_model(request: pytest.FixtureRequest, edgeprof_cell):
    """The cell's torchvision model on the device, in eval mode, built once per session and weights
    (``--weights``) and warmed up until its timings settle. Under ``--isolate``, and for a cell that
    ``--resume`` replays, it is a ``ModelRef`` (name, weights, variant) that is built where it runs."""
    from pytest_edgeprof.models.prune import PruneUnsupported

    session = request.config.stash[SESSION]
    ref = session.model_ref(edgeprof_cell)
    if session.log.replayable(session.cell_key(request.node.nodeid, edgeprof_cell, ref.identity(), evaluated=True)):
        return ref
    try:
        if session.settings.isolate:
            session.models.prepare_variant(ref)  # pruned here once, loaded from the cache by each child
            return ref
        return session.models.build(ref)
    except PruneUnsupported as exc:
        pytest.skip(f"{edgeprof_cell.model} cannot be pruned: {exc}")


@pytest.fixture
def edgeprof(request: pytest.FixtureRequest, benchmark, edgeprof_device):
    """Device-aware timer around pytest-benchmark's ``benchmark``: ``edgeprof(model, cell=...)`` or
    ``edgeprof(model, batch_size=4, input_shape=(3, 64, 64))`` warms up, times with CUDA events or
    perf_counter, measures peak memory, energy and FLOPs, saves the cell's record in ``extra_info``,
    and fails the test when a budget (device memory, ``--budget``, ``budget`` marker) is broken."""
    from pytest_edgeprof.budgets import merge_budgets
    from pytest_edgeprof.plugin.fixture import EdgeprofTimer

    session = request.config.stash[SESSION]
    budgets = merge_budgets(session.device_budgets(), *session.settings.budget_layers, marker_budgets(request.node))
    return EdgeprofTimer(benchmark, session, budgets)

"""pytest hooks only: the plugin's hooks and fixtures, wiring the other modules to pytest.

Options and ini keys live in ``options.py``, markers in ``markers.py``, the run's state in
``session.py`` and ``runlog.py``, the timer fixture's object in ``fixture.py``, what only some runs
need in the feature plugins of ``features/`` (registered here); measuring lives in ``measure/``,
reading runs back in ``runs/``.

pytest loads this module in every run of the environment, tests of edgeprof or not, and ``pytest
--help`` runs ``pytest_configure``. edgeprof is engaged (``engage()``: its session made, its feature
plugins registered) only by an edgeprof option or ini key, or by an edgeprof test collected; a run
of neither behaves as if the plugin were not installed. Nothing here imports torch on loading or
configuring: the device and the grid are resolved just before collection when the user set one of
their options, else when an edgeprof test is collected; the models and the meters on first use of a
fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgeprof.compat import pytest_benchmark
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.plugin.markers import marker_budgets, marker_help
from pytest_edgeprof.plugin.options import (
    add_options,
    load_settings,
    options_given,
    read_option,
    run_conditions_refusal,
)

if TYPE_CHECKING:
    from pytest_edgeprof.measurement import Cell
    from pytest_edgeprof.models.grid import Grid
    from pytest_edgeprof.plugin.session import EdgeprofSession

SESSION = pytest.StashKey["EdgeprofSession"]()  # only where edgeprof is engaged: read through engaged() and engage()

EDGEPROF_FIXTURES = frozenset({"edgeprof", "edgeprof_model", "edgeprof_cell"})
DEVICE_FIXTURES = EDGEPROF_FIXTURES | {"edgeprof_device"}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """An edgeprof option or ini key engages edgeprof now, so a bad value is a usage error (exit 4) before
    collection; otherwise only an edgeprof test collected does, and a run of plain tests is left alone."""
    config.addinivalue_line("markers", marker_help("budget"))
    if options_given(config):
        engage(config)


def engaged(config: pytest.Config) -> EdgeprofSession | None:
    """The run's session, None where edgeprof is not engaged (no edgeprof option, no edgeprof test)."""
    return config.stash.get(SESSION, None)


def engage(config: pytest.Config) -> EdgeprofSession:
    """The run's session, made on first use with the feature plugins its options ask for."""
    session = engaged(config)
    if session is None:
        from pytest_edgeprof.plugin.features import register_features
        from pytest_edgeprof.plugin.session import EdgeprofSession

        benchmark = pytest_benchmark.options(config)
        settings = load_settings(config)
        session = EdgeprofSession(settings, benchmark, refusal=run_conditions_refusal(config, benchmark.timer))
        session.grid_asked = read_option(config, "device") is not None or settings.grid != "default" or settings.models is not None
        register_features(config, session)
        config.stash[SESSION] = session
    return session


def _is_edgeprof_test(item: pytest.Item, fixtures: frozenset[str] = DEVICE_FIXTURES) -> bool:
    return not fixtures.isdisjoint(getattr(item, "fixturenames", ()))


def pytest_sessionstart(session: pytest.Session) -> None:
    """A device the host lacks, an unknown grid or model the user asked for: a usage error (exit 4)
    before collection. A run that set none of them resolves nothing until an edgeprof test needs it."""
    state = engaged(session.config)
    if state is not None and state.grid_asked:
        _grid(state)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = engaged(config)
    if session is not None:
        session.close()


def _grid(session: EdgeprofSession) -> Grid:
    """The grid, resolving the device; a bad one is a usage error."""
    try:
        return session.grid()
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if _is_edgeprof_test(item)]
    if not ours:
        return
    session = engage(config)
    for item in ours:
        marker_budgets(item)  # a bad budget marker stops the run before anything is measured
    cells = [cell for cell in map(_cell_of, ours) if cell is not None]
    if cells:
        check_grid(session.settings.weights, cells)
        check_caches(session, cells)


def _cell_of(item: pytest.Item) -> Cell | None:
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


def check_caches(session: EdgeprofSession, cells: list) -> None:
    """The caches the grid's cells will write, checked before anything is measured: a deployed-model cache
    that cannot be written is one line now, not a cell skipped as unsupported after the others ran; the
    key that signs cache files is at hand (the variant cache's folder was checked with the options)."""
    from pytest_edgeprof.cache_integrity import cache_key
    from pytest_edgeprof.models.deploy.deployer import uses_cache

    try:
        if session.settings.prune_targets:
            cache_key()
        if any(uses_cache(cell) and not session.deployment_reason(cell) for cell in cells):
            session.models.deployer.check_cache()
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """The device, where it is resolved by now (the user set it); else it is shown after collection."""
    session = engaged(config)
    return _device_line(session) if session is not None and session.device_resolved else None


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str] | None:
    """The device line, once an edgeprof test is collected, where the header could not show it
    (resolving ``auto`` imports torch, which a run of plain tests must not pay for)."""
    session = engaged(config)
    if session is None or session.device_shown or config.get_verbosity() < 0:
        return None
    if not any(_is_edgeprof_test(item) for item in items):
        return None
    return _device_line(session)


def _deployment_lines(session: EdgeprofSession) -> list[str]:
    """Said once, up front: the grid's precisions and runtimes the device cannot run usefully (their cells
    are skipped), and int8 calibrated on generated images."""
    lines = [f"edgeprof: {precision} {runtime} skipped on {session.profile.name}: {why}"
             for (precision, runtime), why in session.deployment_reasons().items()]
    if "int8" in session.grid().precisions and session.settings.calib_data is None:
        lines.append("edgeprof: int8 is calibrated on generated images, so its accuracy means nothing "
                     "(--calib-data DIR: an ImageFolder of real ones)")
    return lines


def _device_line(session: EdgeprofSession) -> list[str]:
    try:
        profile = session.profile
        lines = [f"edgeprof: device {profile.name} ({profile.description})"]
        if session.grid_asked or session.grid_built:
            lines += _deployment_lines(session)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    session.device_shown = True
    if session.features.emulation is not None:
        lines[0] += session.features.emulation.device_note()
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edgeprof_cell" not in metafunc.fixturenames:
        return
    session = engage(metafunc.config)
    cells = _grid(session).cells(session.variants())
    metafunc.parametrize("edgeprof_cell", cells, ids=[cell.id for cell in cells])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    if _is_edgeprof_test(item, EDGEPROF_FIXTURES):
        _skip_or_refuse(item, engage(item.config))
    with _stop_on_usage_error(item):
        return (yield)


def _skip_or_refuse(item: pytest.Item, session: EdgeprofSession) -> None:
    """An edgeprof test this run cannot measure (its timer, xdist) errors with the one line; a cell whose
    configuration the device cannot run, or whose batch cannot fit, is skipped with the reason saved."""
    if session.refusal is not None:
        pytest.fail(session.refusal, pytrace=False)
    cell = _cell_of(item)
    if cell is None:
        return
    reason = session.deployment_reason(cell) or session.log.capacity_skip_reason(item.nodeid.split("[")[0], cell)
    if reason:
        from pytest_edgeprof.measurement import Measurement
        from pytest_edgeprof.outcome import Outcome

        measurement = Measurement(cell, session.profile.name, Outcome.SKIPPED, reason)
        if session.features.emulation is not None and session.deployment_reason(cell):
            session.features.emulation.predict_only(measurement)  # --emulate BOARD: the board's figures, predicted
        session.log.record_skipped(item.nodeid, measurement)
        pytest.skip(measurement.error)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _stop_on_usage_error(item):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session):
    """Around the tests. Before the first, where an edgeprof test will run, the journal is taken: one held by
    another run, or whose lock cannot be written, stops the run with one line before anything is measured (a
    run of plain tests makes no journal). After the last, a run whose cells all failed or were skipped is still
    saved by pytest-benchmark, with its untimed cells."""
    state = engaged(session.config)
    if state is not None and state.refusal is None and _runs_edgeprof_tests(session):
        try:
            state.log.open_journal()
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
    try:
        return (yield)
    finally:
        if state is not None and state.has_log and state.log.untimed_cells():
            pytest_benchmark.save_without_timings(session.config)


def _runs_edgeprof_tests(session: pytest.Session) -> bool:
    option = session.config.option
    if option.collectonly or (session.testsfailed and not option.continue_on_collection_errors):
        return False  # no test will run
    return any(_is_edgeprof_test(item, EDGEPROF_FIXTURES) for item in session.items)


@contextmanager
def _stop_on_usage_error(item: pytest.Item) -> Iterator[None]:
    """Bad input found only mid-run in an edgeprof test (a weights file that is no state dict, an
    unreadable image, labels beyond the model's classes) stops the session with the usage exit code and
    one line. Cells measured before it stay in the journal, and pytest-benchmark still saves them when
    the session ends. Other tests are left alone: their exceptions are theirs."""
    try:
        yield
    except UsageError as exc:
        session = engaged(item.config)
        if session is None or not _is_edgeprof_test(item, EDGEPROF_FIXTURES):
            raise
        journal = session.settings.journal
        pytest.exit(f"{exc} (stopped at {item.nodeid}; the cells measured before it are in {journal})",
                    returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    session = engaged(config)
    if session is None or not session.has_log:
        return
    _write_broken_budgets(terminalreporter, session.log.broken_budgets)
    if session.log.results:
        _write_answer(terminalreporter, session, quiet=config.get_verbosity() < 0)


def _write_answer(terminalreporter: pytest.TerminalReporter, session: EdgeprofSession, quiet: bool) -> None:
    """The run's cells as one table, the recommended cell and what did not fit."""
    import shutil

    from pytest_edgeprof.runs import summary

    width = shutil.get_terminal_size((100, 24)).columns
    columns = session.settings.columns or summary.DEFAULT_COLUMNS
    terminalreporter.write_sep("=", f"edgeprof: {session.where}", bold=True)
    for line in summary.render(session.log.as_saved_run(), width=width, columns=columns, quiet=quiet):
        terminalreporter.write_line(line)


def _write_broken_budgets(terminalreporter: pytest.TerminalReporter, broken: list[tuple[str, list[str]]]) -> None:
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
    session = engaged(config)
    untimed = session.log.untimed_cells() if session is not None and session.has_log else []
    if untimed:
        output_json["edgeprof"] = {"untimed_cells": untimed}


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    session = engaged(config)
    if session is None:
        return
    from pytest_edgeprof.device import machine_info as device_machine_info

    machine_info["edgeprof"] = device_machine_info(session.profile)  # the peak probe adds what it probed


@pytest.fixture(scope="session")
def edgeprof_device(pytestconfig: pytest.Config):
    """The resolved device profile (``--device``): name, torch device, memory capacity, power envelope."""
    try:
        return engage(pytestconfig).profile
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture
def edgeprof_model(request: pytest.FixtureRequest, edgeprof_cell):
    """The cell's torchvision model on the device, in eval mode, built once per session and weights
    (``--weights``) and warmed up until its timings settle. Under ``--isolate``, and for a cell that
    ``--resume`` replays, it is a ``ModelRef`` (name, weights, variant) that is built where it runs."""
    from pytest_edgeprof.models.prune import PruneUnsupported

    session = engage(request.config)
    ref = session.model_ref(edgeprof_cell)
    if session.features.replay(session.cell_key(request.node.nodeid, edgeprof_cell, ref.identity(), evaluated=True)):
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

    session = engage(request.config)
    budgets = merge_budgets(session.device_budgets(), *session.settings.budget_layers, marker_budgets(request.node))
    return EdgeprofTimer(benchmark, session, budgets)

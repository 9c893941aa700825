"""``--device ssh://[user@]host[:port]``: the grid's cells measured on a board over SSH (``remote/``).

Registered only when ``--device`` (or ``edgeprof_device``) names a board address, or a labgrid place
(``labgrid:PLACE``, ``labgrid:TAG=VALUE``), which is held for the session and whose NetworkService is the address. The host keeps
collection, the grid, budgets, the journal, resume, the summary and pytest-benchmark's storage; each cell's
model is exported here, copied once into the board's cache and timed there by the worker, whose rounds go
to pytest-benchmark as a local cell's do. The board is asked what it has before the first cell (a runtime it
lacks is said once and its cells skipped); its identity and runtime versions join every cell key and the
saved machine info. A lost connection fails the cell with one line and the next cell connects again; after
3 failures in a row the board's remaining cells are skipped with the reason.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgeprof.device import DeviceProfile
from pytest_edgeprof.errors import DeployUnsupported, UsageError
from pytest_edgeprof.measurement import Cell, Measurement
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.plugin.extension import CellFeature
from pytest_edgeprof.remote.address import BoardAddress, parse_board_address
from pytest_edgeprof.remote.board import Board
from pytest_edgeprof.remote.connection import BoardUnreachable
from pytest_edgeprof.remote.labgrid_place import hold_place, is_labgrid_device, lg_coordinator_option, parse_place_spec

if TYPE_CHECKING:
    from torch import nn

    from pytest_edgeprof.plugin.session import EdgeprofSession

FAILURES_IN_A_ROW = 3  # lost connections in a row after which the board's remaining cells are skipped


def register_remote(config: pytest.Config, session: EdgeprofSession) -> None:
    """The board's plugin registered (a labgrid place held first where --device names one)."""
    settings = session.settings
    try:
        if is_labgrid_device(settings.device):
            place = LabgridPlacePlugin(config, str(settings.device), settings.board_wait)
            config.pluginmanager.register(place, "edgeprof-labgrid-place")
            address = place.address
        else:
            address = parse_board_address(str(settings.device))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    remote = RemotePlugin(address, settings.ssh_config, settings.board_python, session)
    config.pluginmanager.register(remote, "edgeprof-remote")  # registered last, so unconfigured first
    session.features.add(remote)
    session.features.remote = remote


class LabgridPlacePlugin:
    """A labgrid place held from configure to unconfigure, given back on Ctrl-C and on errors too."""

    def __init__(self, config: pytest.Config, device: str, wait_s: float) -> None:
        self._held = ExitStack()
        spec = parse_place_spec(device)
        place = self._held.enter_context(hold_place(spec, lg_coordinator_option(config), wait_s))
        self.address = BoardAddress(place.host, place.port, place.user)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._held.close()


class RemotePlugin(CellFeature):
    def __init__(self, address: BoardAddress, ssh_config: Path | None, python: str, session: EdgeprofSession) -> None:
        self.board = Board(address, ssh_config, python)
        self._session = session
        self._failures: list[str] = []  # the lines of the failures in a row, reset by a cell the board answered

    def profile(self) -> DeviceProfile:
        """The board as a device: asked once what it has; an unreachable board is a UsageError line."""
        try:
            report = self.board.report
        except (BoardUnreachable, RuntimeError) as exc:
            raise UsageError(f"--device {self.board.name}: cannot reach the board: {exc}") from None
        model = report.get("model") or ""
        description = f"{self.board.identity()}; {self.board.runtime_versions()}; over SSH"
        return DeviceProfile(self.board.name, "cpu", description, int(report.get("memory_bytes") or 0),
                             shared_memory="jetson" in model.lower(), jetson_model=model if "jetson" in model.lower() else None)

    def unsupported(self, precision: str, runtime: str) -> str | None:
        """Why the board cannot run this precision and runtime (said once before the run); None where it can."""
        lacks = self.board.lacks(runtime)
        if lacks is None and precision == "bf16" and runtime != "eager":
            return f"{runtime} on the board takes numpy inputs, and numpy has no bfloat16"
        return lacks

    def key_conditions(self) -> dict[str, str]:
        return {"board": self.board.identity(), "board_runtimes": self.board.runtime_versions()}

    def measure(self, module: nn.Module, cell: Cell, identity: dict[str, str]) -> Measurement:
        """The cell measured on the board; a lost connection is a failed cell naming the board and the error."""
        from pytest_edgeprof.remote.cell import RemoteRun, measure_on_board

        if len(self._failures) >= FAILURES_IN_A_ROW:
            raise DeployUnsupported(f"board {self.board.name} skipped after {FAILURES_IN_A_ROW} failures in a row "
                                    f"(last: {self._failures[-1]})")
        session = self._session
        run = RemoteRun(session.stopping_rule(), session.warm_up_s(), not session.settings.no_energy,
                        session.models.deployer)
        try:
            measurement = measure_on_board(self.board, module, cell, identity, run)
        except BoardUnreachable as exc:
            line = f"board {self.board.name}: connection lost: {exc}"
            self._failures.append(line)
            return Measurement(cell, self.board.name, Outcome.FAILED, line)
        self._failures.clear()
        return measurement

    @pytest.hookimpl(trylast=True)  # after the core wrote machine_info["edgeprof"]
    def pytest_benchmark_update_machine_info(self, config: pytest.Config, machine_info: dict[str, Any]) -> None:
        if "report" not in vars(self.board):
            return  # the board was never reached
        report = self.board.report
        machine_info.setdefault("edgeprof", {})["board"] = {
            "address": self.board.name, "identity": self.board.identity(), "hostname": report.get("hostname"),
            "model": report.get("model"), "l4t": report.get("l4t"), "python": report.get("python"),
            "cpu": report.get("cpu"), "memory_bytes": report.get("memory_bytes"), "runtimes": report.get("runtimes")}

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if "report" in vars(self.board):
            terminalreporter.write_line(f"edgeprof: board {self.board.name}: artifacts {self.board.cache.summary()}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.board.close()

"""pytest hooks only: options and ini keys, fixtures, test generation, machine info.

Measuring lives in the other modules; this one wires them to pytest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import pytest

from .errors import UsageError

if TYPE_CHECKING:
    from .session import EdgeprofSession, Settings

GROUP = "edgeprof"


@dataclass(frozen=True)
class Option:
    """A command-line flag and its ini twin; ``parse`` turns the text into the Settings value."""

    flag: str
    ini: str
    metavar: str
    help: str
    parse: Callable[[str], Any] = str


def _grid_parsers() -> dict[str, Callable[[str], Any]]:
    from . import grid  # torch/torchvision are imported only once pytest configures the plugin

    return {"models": grid.parse_models, "batch_sizes": grid.parse_batch_sizes, "shapes": grid.parse_shapes}


OPTIONS: dict[str, Option] = {
    "device": Option(
        "--device", "edgeprof_device", "DEVICE",
        "device to benchmark on: auto (CUDA if present, else CPU), cpu, cuda, cuda:N, jetson "
        "(detected from /proc/device-tree/model) or a profile such as jetson-nano, jetson-orin-nano. Default: auto",
    ),
    "grid": Option(
        "--grid", "edgeprof_grid", "NAME",
        "default: a grid sized for the device (on a CPU: vgg16, resnet50, mobilenet_v3_large x batch 1,2 x 112,160); "
        "study: the study's full grid, batch 1,8,16,32,64,128 x 224,192,160,112",
    ),
    "models": Option("--models", "edgeprof_models", "NAMES", "comma list of torchvision classification models, e.g. resnet50,vgg16"),
    "batch_sizes": Option("--batch-sizes", "edgeprof_batch_sizes", "SIZES", "comma list of batch sizes, e.g. 1,8,32"),
    "shapes": Option("--shapes", "edgeprof_shapes", "SHAPES", "comma list of input sizes: 224 (square) or 224x160 (height x width)"),
    "weights": Option(
        "--weights", "edgeprof_weights", "WEIGHTS",
        "random (default), a weights name such as DEFAULT that is already in the torch cache, or a state-dict path; never downloads",
    ),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "edgeprof: CNN benchmarks on edge devices")
    for option in OPTIONS.values():
        group.addoption(option.flag, metavar=option.metavar, default=None, help=option.help)
        parser.addini(option.ini, help=f"default for {option.flag}: {option.help}", default=None)


def read_option(config: pytest.Config, name: str) -> str | None:
    """The command line's value, else the ini key's, else None."""
    option = OPTIONS[name]
    value = config.getoption(option.flag)
    if value is None:
        value = config.getini(option.ini) or None
    return value


def load_settings(config: pytest.Config) -> Settings:
    from .session import Settings

    parsers = _grid_parsers()
    values: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        text = read_option(config, name)
        if text is None:
            continue
        try:
            values[name] = parsers.get(name, option.parse)(text)
        except UsageError as exc:
            raise pytest.UsageError(f"{option.flag}/{option.ini}: {exc}") from None
    return Settings(**values)


SESSION = pytest.StashKey["EdgeprofSession"]()


def pytest_configure(config: pytest.Config) -> None:
    from .session import EdgeprofSession

    session = config.stash[SESSION] = EdgeprofSession(load_settings(config))
    if read_option(config, "device") is not None or session.settings.grid != "default":
        _grid(session)  # an explicit --device the host lacks is a usage error before anything runs


def _grid(session: EdgeprofSession):  # -> grid.Grid, resolving the device
    try:
        return session.grid()
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str | None:
    session = config.stash[SESSION]
    if session._profile is None:
        return None
    return f"edgeprof: device {session.profile.name} ({session.profile.description})"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edgeprof_cell" not in metafunc.fixturenames:
        return
    cells = _grid(metafunc.config.stash[SESSION]).cells()
    metafunc.parametrize("edgeprof_cell", cells, ids=[cell.id for cell in cells])


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from .device import machine_info as device_machine_info

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
    (``--weights``) and warmed up until its timings settle."""
    return pytestconfig.stash[SESSION].model(edgeprof_cell.model)


@pytest.fixture
def edgeprof(benchmark, edgeprof_device):
    """Device-aware timer around pytest-benchmark's ``benchmark``: ``edgeprof(model, cell=...)`` or
    ``edgeprof(model, batch_size=4, input_shape=(3, 64, 64))`` warms up, times with CUDA events or
    perf_counter, and saves the DESIGN.md keys (latency, throughput, ...) in ``extra_info``."""
    from .fixture import EdgeprofTimer

    return EdgeprofTimer(benchmark, edgeprof_device)

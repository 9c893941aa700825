import importlib
import os
import sys
from pathlib import Path

import pytest
import torch

# pytester's in-process runs forget the modules first imported inside them; torchvision registers
# torch operators, which cannot be registered twice, so it is imported once, here, before any run.
import torchvision  # noqa: F401

# The same for the runtimes and quantizers, which abort the process or register their operators twice when a
# later run imports them again.
for _native in ("onnxruntime", "onnxruntime.quantization", "onnx", "onnxscript", "torchao",
                "torchao.quantization.pt2e.quantize_pt2e", "torchao.quantization.pt2e.quantizer.x86_inductor_quantizer",
                "torch._inductor.codecache", "torch.onnx",
                # SQLAlchemy's compiled extensions break when a run re-imports it (the results store's runs)
                "sqlalchemy", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "psycopg"):
    try:
        importlib.import_module(_native)
    except ImportError:  # the precision and runtime tests skip without them
        pass

# The team's check scripts and their helpers: tests import what they share with them (the bad-input
# inventory, the digits CNN, a check's model lists); tools never import tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

# Saved runs made by real pytest runs, shared by the compare/limits/report/results tests.
from loopback_board import NoBoard, board_venv, start_sshd  # noqa: E402
from saved_runs import grid_run, plain_run, scratch_storage  # noqa: E402, F401 (fixtures; tools/ goes on the path first)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module, restored after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def one_cache_folder(tmp_path_factory):
    """One cache folder for the whole test session (for each xdist worker under `make test`), as a user's machine
    has one: pytester gives each run a fresh HOME, and without this every timed run would probe the device's peak again."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))  # the key that signs the cache's files
    # Under `make test` this session may be a pytest-xdist worker: pytest-benchmark turns itself off in any run
    # that sees PYTEST_XDIST_WORKER, so the runs the tests make (pytester, subprocesses) must not inherit it, and
    # a worker's COLUMNS=80 would wrap the summaries those runs print narrower than a plain run's 100 columns.
    if "PYTEST_XDIST_WORKER" in os.environ:
        for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID", "COLUMNS", "LINES"):
            patch.delenv(name, raising=False)
    yield
    patch.undo()


@pytest.fixture
def pytester(pytester, monkeypatch):
    """pytester's runs leave labgrid's pytest plugin out: installed with the labgrid extra, it starts a
    process-wide step logger, and a second pytest run in the same process would start it again and stop with
    an internal error. A test that needs the plugin runs pytest in a subprocess and sets PYTEST_ADDOPTS itself."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:labgrid")
    return pytester


@pytest.fixture(scope="session")
def board_python(tmp_path_factory):
    """A "board" venv with only numpy and onnxruntime (no torch, no pytest, no edgeprof): its Python."""
    try:
        return board_venv(tmp_path_factory.mktemp("board") / "venv")
    except NoBoard as exc:
        pytest.skip(f"no board venv: {exc}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """Debian's sshd on 127.0.0.1 at a free port, with generated keys (tools/loopback_board.py)."""
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except NoBoard as exc:
        pytest.skip(f"no sshd: {exc}")
    yield server
    server.kill()

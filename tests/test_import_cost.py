"""Installing the plugin must not slow down every pytest run (issue 17).

pytest loads the plugin in every run of the environment, and ``edgeprof --help`` or a comparison of
saved runs needs no model. Each test here runs a real process under ``python -X importtime`` and
reads which libraries it imported: loading and configuring the plugin, checking option values that
need no model, a run of plain tests, the ``edgeprof`` parser and ``compare`` import no torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = frozenset({"torch", "torchvision", "torch_pruning", "codecarbon", "matplotlib"})

PLAIN_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(5))
def test_plain(n):
    assert n + 1 > n
"""

TINY_CELL = """
from torch import nn

def test_tiny(edgeprof):
    edgeprof(nn.Conv2d(3, 4, 3), batch_size=1, input_shape=(3, 16, 16), name="tiny")
"""


def run(argv: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime ARGV`` with this checkout first on the path; the heavy libraries it imported."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    return done, _heavy_imports(done.stderr)


def _heavy_imports(stderr: str) -> set[str]:
    """The heavy top-level packages in ``-X importtime``'s lines (``import time: self | cumulative | name``)."""
    names = {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    return {name.split(".")[0] for name in names} & HEAVY


def _messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("import time:")]


# --- the plugin ----------------------------------------------------------------------------------


def test_pytest_help_loads_the_plugin_without_heavy_imports(tmp_path: Path) -> None:
    done, heavy = run(["-m", "pytest", "-p", "no:cacheprovider", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "edgeprof: CNN benchmarks on edge devices" in done.stdout  # the plugin was loaded
    assert heavy == set()


def test_option_values_that_need_no_model_are_checked_without_torch(tmp_path: Path) -> None:
    (tmp_path / "images" / "ant").mkdir(parents=True)
    (tmp_path / "images" / "ant" / "a.png").write_bytes(b"")
    options = ["--batch-sizes", "1,8", "--shapes", "224,224x160", "--prune", "0.25,0.5", "--prune-method", "magnitude",
               "--budget", "memory=2.6GB,latency=50ms", "--eval-data", "images", "--eval-limit", "5",
               "--isolate-memory-limit", "2GB", "--models", "resnet18,vgg16", "--grid", "study", "--device", "cpu",
               "--precision", "fp32,fp16", "--runtime", "eager,compile",
               "--emulate", "jetson-nano", "--cooldown", "until=50C", "--resume"]  # their feature plugins: torch-free
    done, heavy = run(["-m", "pytest", "-p", "no:cacheprovider", *options, "--help"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert heavy == set()


@pytest.mark.parametrize("argv, fragment", [
    (["--batch-sizes", "0,8"], "bad batch size '0'"),
    (["--prune", "0.9"], "--prune '0.9': 0.9 is out of range"),
    (["--eval-data", "missing"], "--eval-data missing: no such folder"),
    (["--device", "tpu"], "unknown --device 'tpu'; accepted: auto, cpu, cuda"),
    (["--runtime", "tvm"], "--runtime 'tvm': unknown 'tvm'; accepted: eager, compile, onnxruntime, tensorrt"),
])
def test_a_bad_option_value_is_one_usage_error_without_torch(tmp_path: Path, argv: list[str], fragment: str) -> None:
    (tmp_path / "test_plain.py").write_text(PLAIN_TESTS)
    done, heavy = run(["-m", "pytest", "-p", "no:cacheprovider", *argv], tmp_path)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    (line,) = _messages(done.stderr)
    assert fragment in line
    assert heavy == set()


@pytest.mark.parametrize("argv", [[], ["--device", "cpu", "--batch-sizes", "1", "--budget", "memory=1GB"]],
                         ids=["defaults", "cpu-options"])
def test_a_run_of_plain_tests_imports_nothing_heavy(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "test_plain.py").write_text(PLAIN_TESTS)
    done, heavy = run(["-m", "pytest", "-p", "no:cacheprovider", *argv], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
    assert heavy == set()


def test_the_axis_registry_and_what_reads_it_before_a_cell_import_no_torch(tmp_path: Path) -> None:
    modules = "pytest_edgeprof.axes, pytest_edgeprof.measurement, pytest_edgeprof.models.grid, " \
              "pytest_edgeprof.models.deploy.support"
    done, heavy = run(["-c", f"import {modules}"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert heavy == set()


# --- the edgeprof command ------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["--help"], ["flops", "--help"], ["prune", "--help"], ["compare", "--help"], ["limits", "--help"],
    ["report", "--help"], ["layers", "--help"], ["capacity", "--help"],
], ids=lambda argv: " ".join(argv))
def test_edgeprof_help_imports_nothing_heavy(tmp_path: Path, argv: list[str]) -> None:
    done, heavy = run(["-m", "pytest_edgeprof.cli", *argv], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: edgeprof" in done.stdout
    assert heavy == set()


@pytest.mark.parametrize("argv", [
    ["flops", "resnet18", "--batch", "0"], ["prune", "resnet18", "--target", "0.9"], ["layers", "resnet18", "--top", "0"],
    ["capacity", "resnet18", "--memory", "lots"], ["frobnicate"],
], ids=lambda argv: " ".join(argv))
def test_edgeprof_argument_errors_import_nothing_heavy(tmp_path: Path, argv: list[str]) -> None:
    done, heavy = run(["-m", "pytest_edgeprof.cli", *argv], tmp_path)
    assert done.returncode == 2
    (line,) = _messages(done.stderr)
    assert line.startswith("edgeprof: error: ")
    assert heavy == set()


_RUNS: dict[str, Path] = {}


@pytest.fixture
def small_run(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real saved run of one tiny cell (made once per session)."""
    if "tiny" not in _RUNS:
        pytester.makepyfile(test_tiny=TINY_CELL)
        out = tmp_path_factory.mktemp("import_cost") / "tiny.json"
        pytester.runpytest("--device", "cpu", "--no-energy", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3",
                           "-p", "no:cacheprovider", f"--benchmark-json={out}").assert_outcomes(passed=1)
        _RUNS["tiny"] = out
    return _RUNS["tiny"]


@pytest.mark.parametrize("command", [["compare", "RUN", "RUN"], ["compare", "RUN", "RUN", "--json"], ["limits", "RUN"]],
                         ids=lambda argv: " ".join(argv))
def test_compare_and_limits_import_neither_torch_nor_matplotlib(tmp_path: Path, small_run: Path, command: list[str]) -> None:
    argv = [str(small_run) if word == "RUN" else word for word in command]
    done, heavy = run(["-m", "pytest_edgeprof.cli", *argv], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tiny" in done.stdout
    assert heavy == set()


def test_report_imports_matplotlib_alone(tmp_path: Path, small_run: Path) -> None:
    done, heavy = run(["-m", "pytest_edgeprof.cli", "report", str(small_run), "--out", "report"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "report" / "index.html").is_file()
    assert heavy == {"matplotlib"}


def test_the_image_suffixes_written_out_are_torchvisions() -> None:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    from pytest_edgeprof.models.image_folder import IMAGE_SUFFIXES

    assert IMAGE_SUFFIXES == frozenset(IMG_EXTENSIONS)

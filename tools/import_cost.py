"""What installing the plugin costs every pytest run, and how fast ``edgeprof`` answers (issue 17).

    python tools/import_cost.py [--rounds 7] [--as-is]

Each pair of commands runs alternately ``--rounds`` times (so a busy machine slows both alike) and
the medians of their wall times are printed, with the issue's goal for the pair:

- ``pytest --help`` with the plugin vs ``pytest -p no:edgeprof --help``: within 0.3 s;
- ``edgeprof --help`` and ``edgeprof compare RUN RUN`` on a one-cell saved run: each under 1 s;
- a folder of 50 plain tests with the plugin vs ``-p no:edgeprof``: within 5 %.

The commands run in a scratch folder with this checkout first on ``PYTHONPATH``; the saved run is
made there first by a real pytest run of one tiny cell. By default Python's bytecode cache is on
(kept under the scratch folder, warmed by an untimed first turn), as for an installed package, whose
modules pip compiles. ``--as-is`` keeps the environment as it is: where ``PYTHONDONTWRITEBYTECODE``
is set and the checkout has no ``__pycache__`` (this project's machine), every run compiles
edgeprof's modules again while pytest's own come compiled from site-packages.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PLAIN_TESTS = "import pytest\n\n\n@pytest.mark.parametrize('n', range(10))\ndef test_plain(n):\n    assert n >= 0\n"
TINY_CELL = """
from torch import nn

def test_tiny(edgeprof):
    edgeprof(nn.Conv2d(3, 4, 3), batch_size=1, input_shape=(3, 16, 16), name="tiny")
"""


def _env(pycache: Path | None = None) -> dict[str, str]:
    """This checkout first on the path; with ``pycache``, the bytecode cache on and kept there."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PYTEST_ADDOPTS", None)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _edgeprof() -> list[str]:
    """The ``edgeprof`` script beside this interpreter (what a user types), else ``python -m pytest_edgeprof.cli``."""
    script = Path(sys.executable).parent / "edgeprof"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pytest_edgeprof.cli"]


def wall_time(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def medians(commands: dict[str, list[str]], cwd: Path, rounds: int, env: dict[str, str]) -> dict[str, float]:
    """Each command's median wall time, the commands run in turn ``rounds`` times (after one untimed turn)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for turn in range(rounds + 1):
        for name, argv in commands.items():
            seconds = wall_time(argv, cwd, env)
            if turn:  # the first turn warms the file cache
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def prepare(folder: Path) -> Path:
    """A folder of 50 plain tests, and a saved run of one tiny cell; the run's path."""
    plain = folder / "plain"
    plain.mkdir()
    for index in range(5):
        (plain / f"test_plain_{index}.py").write_text(PLAIN_TESTS)
    cell = folder / "cell"
    cell.mkdir()
    (cell / "test_tiny.py").write_text(TINY_CELL)
    run = folder / "tiny.json"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--device", "cpu", "--no-energy",
                    "--benchmark-max-time", "0.02", f"--benchmark-json={run}", "test_tiny.py"],
                   cwd=cell, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed turns per pair (default 7)")
    parser.add_argument("--as-is", action="store_true", help="leave the bytecode cache as the environment has it")
    options = parser.parse_args()
    rounds = options.rounds
    folder = Path(tempfile.mkdtemp(prefix="edgeprof-import-cost-"))
    env = _env() if options.as_is else _env(folder / "pycache")
    try:
        run = prepare(folder)
        pytest = [sys.executable, "-m", "pytest"]
        pairs = [
            ("pytest --help", {"with the plugin": [*pytest, "--help"], "-p no:edgeprof": [*pytest, "-p", "no:edgeprof", "--help"]},
             folder, lambda a, b: f"difference {a - b:+.2f} s (goal: within 0.3 s)"),
            ("edgeprof", {"edgeprof --help": [*_edgeprof(), "--help"],
                          "edgeprof compare RUN RUN": [*_edgeprof(), "compare", str(run), str(run)]},
             folder, lambda a, b: f"goal: each under 1 s ({'met' if max(a, b) < 1 else 'not met'})"),
            ("50 plain tests", {"with the plugin": pytest, "-p no:edgeprof": [*pytest, "-p", "no:edgeprof"]},
             folder / "plain", lambda a, b: f"difference {(a - b) / b:+.1%} (goal: within 5 %)"),
        ]
        cache = "as the environment has it" if options.as_is else "on"
        print(f"medians of {rounds} alternating runs; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
              f"bytecode cache {cache}")
        for title, commands, cwd, verdict in pairs:
            found = medians(commands, cwd, rounds, env)
            print(f"\n{title}")
            for name, seconds in found.items():
                print(f"  {name:<26} {seconds:6.2f} s")
            print(f"  {verdict(*found.values())}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

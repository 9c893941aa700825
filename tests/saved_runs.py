"""Real saved runs for the tests of compare, limits, report and results.

Each run is a real pytest run (pytester) of a small user benchmark through the edgeprof fixture,
saved by pytest-benchmark (``--benchmark-json`` or ``--benchmark-autosave``). Runs are made once per
test session and copied out of pytester's directory, so several tests read the same files.

The fixture saves every DESIGN.md key itself (latency, peak memory, energy, FLOPs, budgets). What
these runs cannot produce on a small CPU host is added to a copy of a saved file by
``with_budget_keys`` (marked STAND-IN): a memory budget the grid breaks part-way, out-of-memory
cells, and top-1.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SMALL = ["--device", "cpu", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3", "-p", "no:cacheprovider"]

# A user's own module timed on a small grid: two variants (the narrower one standing for a pruned
# model), two input sizes, up to three batch sizes; five cells only, since every cell measures
# energy over at least a second (about 4 s a cell on a 2-core CPU with CodeCarbon).
GRID_TEST = '''
import pytest
from torch import nn
from pytest_edgeprof.measurement import Cell


def tiny(width):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


@pytest.mark.parametrize(
    "variant, width, side, batch",
    [("base", 16, 48, 1), ("base", 16, 48, 2), ("base", 16, 48, 4), ("p50", 8, 48, 2), ("base", 16, 32, 2)],
)
def test_grid(edgeprof, variant, width, side, batch):
    edgeprof(tiny(width), cell=Cell("tiny", variant, batch, (3, side, side)))
'''

# A module whose forward really allocates a scratch buffer of SCRATCH floats: the memory bar's model.
SCRATCH_TEST = '''
import torch
from torch import nn

SCRATCH = {scratch}


class Scratch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        scratch = torch.ones(SCRATCH)  # allocated on every call, held until the forward returns
        return self.conv(x).mean() + scratch[-1]


def test_scratch(edgeprof):
    edgeprof(Scratch(), batch_size=1, input_shape=(3, 32, 32), name="scratch")
'''

PLAIN_BENCHMARK_TEST = '''
def test_plain(benchmark):
    benchmark(sum, [1, 2, 3])
'''

_CACHE: dict[str, Path] = {}


def _keep(key: str, produced: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copy a file or folder pytester wrote to a session folder, so other tests can read it."""
    target = tmp_path_factory.mktemp("saved") / produced.name
    if produced.is_dir():
        shutil.copytree(produced, target)
    else:
        shutil.copy(produced, target)
    _CACHE[key] = target
    return target


@pytest.fixture
def grid_run(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --benchmark-json file of GRID_TEST: tiny-base-b{1,2,4}-48x48, tiny-p50-b2-48x48, tiny-base-b2-32x32."""
    if "grid" not in _CACHE:
        pytester.makepyfile(test_answers_grid=GRID_TEST)
        out = pytester.path / "grid.json"
        pytester.runpytest(*SMALL, f"--benchmark-json={out}").assert_outcomes(passed=5)
        _keep("grid", out, tmp_path_factory)
    return _CACHE["grid"]


@pytest.fixture
def scratch_storage(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pytest-benchmark storage folder with two autosaved runs of SCRATCH_TEST: run 0001 with a
    1 M-float scratch buffer (4 MB), run 0002 with 4 M floats (16 MB)."""
    if "scratch" not in _CACHE:
        storage = pytester.path / "storage"
        for scratch in (1_000_000, 4_000_000):
            pytester.makepyfile(test_answers_scratch=SCRATCH_TEST.format(scratch=scratch))
            result = pytester.runpytest(*SMALL, "--benchmark-autosave", f"--benchmark-storage={storage}")
            result.assert_outcomes(passed=1)
        _keep("scratch", storage, tmp_path_factory)
    return _CACHE["scratch"]


@pytest.fixture
def plain_run(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real pytest-benchmark JSON file without any edgeprof cell."""
    if "plain" not in _CACHE:
        pytester.makepyfile(test_answers_plain=PLAIN_BENCHMARK_TEST)
        out = pytester.path / "plain.json"
        pytester.runpytest("-p", "no:cacheprovider", "--benchmark-max-time=0.01", f"--benchmark-json={out}").assert_outcomes(passed=1)
        _keep("plain", out, tmp_path_factory)
    return _CACHE["plain"]


def with_budget_keys(source: Path, target: Path, memory_budget_bytes: float, *, oom_batch: int = 8) -> Path:
    """STAND-IN: the saved run ``source`` under a memory budget of the test's choosing, with
    out-of-memory cells and top-1.

    Every cell gets ``budgets = {"memory": "<N>MB"}``, a ``budget_verdicts`` entry checking its
    ``peak_mem_bytes`` against the budget, and ``outcome`` "passed" or "over-budget" (main's fixture
    writes these keys in this format; here they are replaced by a budget the test chooses). For each
    variant and input shape, a cell of batch ``oom_batch`` that went out of memory is listed under
    ``"edgeprof": {"untimed_cells": [...]}``: the place proposed to the lead for cells that have
    no timings (pytest-benchmark saves only timed benchmarks). Cells also get a made-up ``top1``
    (base 70, p50 68) where the run has none.
    """
    data = json.loads(source.read_text())
    text = f"{memory_budget_bytes / 1e6:g}MB"
    seen = {}
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        peak = info["peak_mem_bytes"]
        passed = peak <= memory_budget_bytes
        info["budgets"] = {"memory": text}
        info["budget_verdicts"] = [
            {"metric": "memory", "budget": text, "limit": memory_budget_bytes, "measured": peak, "passed": passed}
        ]
        info["outcome"] = "passed" if passed else "over-budget"
        info.setdefault("top1", 70.0 if info["variant"] == "base" else 68.0)
        seen[(info["variant"], tuple(info["input_shape"]))] = bench
    untimed = data.setdefault("edgeprof", {}).setdefault("untimed_cells", [])
    for (variant, shape), bench in seen.items():
        info = {k: bench["extra_info"][k] for k in ("model", "variant", "input_shape", "device", "budgets")}
        info.update(batch_size=oom_batch, outcome="out-of-memory",
                    error=f"DefaultCPUAllocator: not enough memory: you tried to allocate {oom_batch * 3} MB")
        untimed.append({"fullname": f"test_answers_grid.py::test_grid[{oom_batch}-{shape[1]}-{variant}]", "extra_info": info})
    target.write_text(json.dumps(data))
    return target

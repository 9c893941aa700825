"""How often ``edgeprof compare A B --fail latency`` cries wolf, and how often it catches a real slowdown.

    python tools/check_gates.py                  # the full check: 5 pairs each, 4 cells, 3 s ceiling a cell
    python tools/check_gates.py --pairs 2 --max-time 1   # a reduced run, to see that it works
    python tools/check_gates.py --threads 0      # torch's own thread count (2 on the project's machine)

A small convolutional stack of BLOCKS identical 3x3 convolutions is timed on a 4-cell grid (batch 1, 2 x
input 24x24, 32x32), each run a fresh pytest process, as a CI job would run it:

- A/A: the same code and settings run 2 x PAIRS times; each pair compared by ``--fail latency``. Bar: at most 5 %
  of the latency comparisons flagged.
- A/B: the stack against one with 20 % more blocks (20 % more work), pairs alternated (each first in turn, so a
  drift over a pair favours neither). Bar: at least 95 % of its cells flagged. The same with 5 % more work:
  the share is reported.

Every run shares one pytest cache, as one machine's runs do, and 2 runs of the base grid come first, so each
cell's repeat interval holds this machine's rerun spread (docs/timing.md). One torch thread by default: on the
project's 2-vCPU machine, with two threads, processes timing the same model differed by up to 2.6x, which no gate
tells from a 20 % change. Run it on a quiet machine: other processes competing for the cores move every median.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_BLOCKS = 20  # 20 -> 21 blocks: 5 % more work; 20 -> 24: 20 %
TEST = '''
import pytest
import torch
from torch import nn
from pytest_edgeprof.measurement import Cell

BLOCKS = {blocks}
if {threads}:
    torch.set_num_threads({threads})


def stack():
    layers = [nn.Conv2d(3, 16, 3, padding=1)]
    for _ in range(BLOCKS):
        layers += [nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.mark.parametrize("batch, side", [(1, {small}), (2, {small}), (1, {large}), (2, {large})])
def test_stack(edgeprof, batch, side):
    edgeprof(stack(), cell=Cell("stack", "base", batch, (3, side, side)))
'''


SETTINGS = {"threads": 1, "small": 24, "large": 32}  # 0 threads: torch's default


def run(blocks: int, folder: Path, name: str, max_time: float) -> Path:
    """One run of the grid with ``blocks`` blocks in a fresh process; its saved JSON. Every run shares the folder's
    pytest cache, as runs on one machine do: each cell's repeat interval holds the spread of the earlier reruns."""
    test = folder / f"test_stack_{blocks}.py"
    test.write_text(TEST.format(blocks=blocks, **SETTINGS))
    out = folder / f"{name}.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "pytest", str(test), "-q", "-p", "no:randomly",
               "--device", "cpu", "--no-energy", f"--benchmark-max-time={max_time}", f"--benchmark-json={out}",
               f"--journal={folder / (name + '.jsonl')}"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the run {name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return out


def flagged(a: Path, b: Path) -> tuple[int, int, list[float]]:
    """``edgeprof compare a b --fail latency --json``: latency comparisons flagged, compared, and each change in %."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "pytest_edgeprof.cli", "compare", str(a), str(b), "--fail", "latency",
                           "--json"], env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"edgeprof compare failed: {done.stderr}")
    report = json.loads(done.stdout)
    latency = [cell["metrics"]["latency_ms_median"] for cell in report["cells"] if "latency_ms_median" in cell["metrics"]]
    return sum(m["regressed"] for m in latency), len(latency), [m["change_percent"] for m in latency]


def pairs_of(blocks_b: int, pairs: int, folder: Path, max_time: float, label: str) -> tuple[int, int, list[float]]:
    """``pairs`` pairs of the base stack (A) and one of ``blocks_b`` blocks (B), each first in turn."""
    hits = total = 0
    changes: list[float] = []
    for i in range(pairs):
        order = [("a", BASE_BLOCKS), ("b", blocks_b)]
        paths = {side: run(blocks, folder, f"{label}{i}{side}", max_time) for side, blocks in order[:: 1 if i % 2 == 0 else -1]}
        h, n, c = flagged(paths["a"], paths["b"])
        hits, total, changes = hits + h, total + n, changes + c
        print(f"  {label} pair {i + 1}: {h} of {n} latency comparisons flagged; changes "
              f"{', '.join(f'{x:+.1f} %' for x in c)}", flush=True)
    return hits, total, changes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="pairs of runs for each of A/A, A/B 20 %%, A/B 5 %% (default 5)")
    parser.add_argument("--max-time", type=float, default=3.0, help="each cell's ceiling in s (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the runs (default 1; 0: torch's own)")
    parser.add_argument("--sides", default="24,32", help="the grid's two input sides (default 24,32)")
    parser.add_argument("--history-runs", type=int, default=2,
                        help="runs of the base grid first, so the machine has earlier reruns as one running the suite "
                             "does (default 2; 0: the first pair is judged on its own rounds)")
    args = parser.parse_args()
    small, large = (int(side) for side in args.sides.split(","))
    SETTINGS.update(threads=args.threads, small=small, large=large)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.history_runs):
            run(BASE_BLOCKS, folder, f"history{i}", args.max_time)
        results = {}
        for label, blocks in (("A/A", BASE_BLOCKS), ("A/B 20 %", BASE_BLOCKS * 6 // 5), ("A/B 5 %", BASE_BLOCKS + 1)):
            print(f"{label}: {BASE_BLOCKS} blocks vs {blocks}", flush=True)
            results[label] = pairs_of(blocks, args.pairs, folder, args.max_time, label.replace(" ", "").replace("%", ""))
    share = {label: hits / total if total else 0.0 for label, (hits, total, _) in results.items()}
    aa_ok, ab_ok = share["A/A"] <= 0.05, share["A/B 20 %"] >= 0.95
    print(f"gates: {args.pairs} pairs each, 4 cells ({args.sides}), {args.threads or 'torch default'} threads, "
          f"{args.history_runs} runs of history first, --fail latency (significant and at least 2 %), ceiling "
          f"{args.max_time} s a cell. " + "; ".join(
              f"{label}: {hits} of {total} latency comparisons flagged ({share[label]:.0%}), median change "
              f"{sorted(changes)[len(changes) // 2] if changes else 0:+.1f} %" for label, (hits, total, changes) in results.items())
          + f". Bars: A/A at most 5 % ({'met' if aa_ok else 'MISSED'}), A/B 20 % at least 95 % "
          f"({'met' if ab_ok else 'MISSED'}); A/B 5 % reported")
    return 0 if aa_ok and ab_ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The results store's numbers (issue 25): writing a 100-cell run to SQLite, and ``edgeprof history`` over
1,000 stored runs, each against its bar of 1 s (a script, not a pytest test).

    python tools/check_store.py                 # the issue's sizes: 100 cells; 1,000 runs of 20 cells
    python tools/check_store.py --runs 50       # a quick try

The runs are a real run made first (benchmarks/test_inference.py, mobilenet_v3_small at batch 1 and 2 x 16x16
and 24x24 on the CPU, a few seconds) whose cells are copied to the size asked, each copy a distinct cell (its batch size) with the real cell's values. Writing: a fresh store
per try, the median of 5 tries of ``Store.add`` (parse, index, one transaction). History: the median of 5
``edgeprof history`` calls in this process (one cell's series, and every cell's), and one as a fresh
``python -m pytest_edgeprof.cli history`` process (imports included), which is what a user waits for.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_edgeprof.cli import main as edgeprof  # noqa: E402
from pytest_edgeprof.runs.store import open_store  # noqa: E402

BAR_S = 1.0


def real_run(folder: Path) -> Path:
    """A real run of the users' suite on a tiny grid, saved as pytest-benchmark JSON."""
    saved = folder / "source.json"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:labgrid", "-q", str(ROOT / "benchmarks" / "test_inference.py"),
                    "--rootdir", str(folder), "--device", "cpu", "--models", "mobilenet_v3_small", "--shapes", "16,24",
                    "--batch-sizes", "1,2", "--no-energy", "--benchmark-max-time", "0.2", f"--benchmark-json={saved}"],
                   cwd=folder, check=True, capture_output=True)
    return saved


def run_of(source: Path, cells: int, tag: str) -> dict[str, Any]:
    """The real run with ``cells`` distinct cells (the real ones' values, batch sizes 1..n), tagged as one commit."""
    document = json.loads(source.read_text())
    real = document["benchmarks"]
    benchmarks = []
    for index in range(cells):
        bench = json.loads(json.dumps(real[index % len(real)]))
        bench["extra_info"]["batch_size"] = index + 1
        bench["fullname"] = f"{bench['fullname']}-{index}"
        benchmarks.append(bench)
    document["benchmarks"] = benchmarks
    document.pop("edgeprof", None)
    document["commit_info"] = {**document["commit_info"], "id": tag, "branch": "main"}
    document["datetime"] = f"2030-01-01T00:00:{int(tag.split('-')[-1]) % 60:02d}.{int(tag.split('-')[-1]):06d}+00:00"
    return document


def time_writes(source: Path, folder: Path, cells: int, tries: int = 5) -> float:
    times = []
    for attempt in range(tries):
        document = run_of(source, cells, f"write-{attempt}")
        with open_store(f"sqlite:///{folder / f'write-{attempt}.db'}") as store:
            began = time.perf_counter()
            store.add(document, "bench-board")
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def fill(source: Path, url: str, runs: int, cells: int) -> str:
    with open_store(url) as store:
        for number in range(runs):
            store.add(run_of(source, cells, f"run-{number}"), "bench-board")
        return store.history(machine="bench-board", metric="latency", run_ids=[1])[0].cell


def time_history(argv: list[str], tries: int = 5) -> tuple[float, int]:
    times, lines = [], 0
    for _ in range(tries):
        out = io.StringIO()
        began = time.perf_counter()
        with contextlib.redirect_stdout(out):
            assert edgeprof(argv) == 0
        times.append(time.perf_counter() - began)
        lines = out.getvalue().count("\n")
    return statistics.median(times), lines


def time_process(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest_edgeprof.cli", *argv], check=True, capture_output=True,
                   env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=100, help="cells of the written run (default 100)")
    parser.add_argument("--runs", type=int, default=1000, help="stored runs history reads (default 1000)")
    parser.add_argument("--history-cells", type=int, default=20, help="cells of each stored run (default 20)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = real_run(folder)
        write_s = time_writes(source, folder, args.cells)
        rows.append((f"write a {args.cells}-cell run to SQLite (median of 5)", write_s))
        url = f"sqlite:///{folder / 'history.db'}"
        began = time.perf_counter()
        cell = fill(source, url, args.runs, args.history_cells)
        print(f"filled {args.runs} runs of {args.history_cells} cells in {time.perf_counter() - began:.1f} s")
        one = ["history", "--store", url, "--machine", "bench-board", "--cell", cell, "--metric", "latency"]
        every = ["history", "--store", url, "--metric", "latency"]
        one_s, one_lines = time_history(one)
        every_s, every_lines = time_history(every)
        rows.append((f"edgeprof history, one cell over {args.runs} runs ({one_lines} lines, in process)", one_s))
        rows.append((f"edgeprof history, every cell over {args.runs} runs ({every_lines} lines, in process)", every_s))
        rows.append((f"edgeprof history, one cell over {args.runs} runs (a fresh process)", time_process(one)))
    print(f"\n{'measure':<78} {'seconds':>8}  bar {BAR_S:.0f} s")
    for name, seconds in rows:
        print(f"{name:<78} {seconds:8.3f}  {'ok' if seconds < BAR_S else 'OVER'}")


if __name__ == "__main__":
    main()

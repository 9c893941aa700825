"""Issue 24's numbers over loopback: the same ONNX Runtime cell timed on the "board" (sshd on 127.0.0.1, a
venv with only numpy and onnxruntime) and locally, alternated, in one script.

    python tools/check_remote.py [--pairs 3] [--model squeezenet1_1] [--shape 64] [--batch 1] [--max-time 2]

Checks: the remote median within 3 % of the local one (the median of the pairs' ratios), wall time per
cell at most 1.5x local (each pytest run's wall time, start-up included, over its cell count), and the
second remote run copying 0 bytes of artifacts. Needs Debian's openssh-server; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback_board import board_venv, start_sshd  # noqa: E402

SUITE = "def test_inference(edgeprof, edgeprof_cell, edgeprof_model):\n    edgeprof(edgeprof_model, cell=edgeprof_cell)\n"
COPIED = re.compile(r"artifacts copied (\d+) bytes")


def run_cell(folder: Path, name: str, device_args: list[str], grid: list[str]) -> tuple[float, float, int | None]:
    """One pytest run: its cell's median latency (ms), its wall time (s), the bytes it copied to the board."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:labgrid", "-q", "test_cell.py", *device_args, *grid,
                           f"--benchmark-json={name}.json", "--benchmark-storage", str(folder / "storage")],
                          cwd=folder, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{name}: pytest exited {done.returncode}\n{done.stdout[-2000:]}")
    info = json.loads((folder / f"{name}.json").read_text())["benchmarks"][0]["extra_info"]
    copied = COPIED.search(done.stdout)
    return info["latency_ms_median"], wall, int(copied[1]) if copied else None


ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--model", default="squeezenet1_1")
    parser.add_argument("--shape", default="64")
    parser.add_argument("--batch", default="1")
    parser.add_argument("--max-time", default="2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeprof-check-remote-") as scratch:
        folder = Path(scratch)
        (folder / "test_cell.py").write_text(SUITE)
        os.environ["XDG_CACHE_HOME"] = str(folder / "cache")
        python = board_venv(folder / "board-venv")
        sshd = start_sshd(folder / "sshd")
        try:
            grid = ["--models", args.model, "--shapes", args.shape, "--batch-sizes", args.batch, "--runtime", "onnxruntime",
                    "--no-energy", "--benchmark-max-time", args.max_time]
            remote = ["--device", sshd.device, "--ssh-config", str(sshd.client_config), "--board-python", str(python)]
            _, _, first_copy = run_cell(folder, "warm-remote", remote, grid)  # exports, copies, warms the caches
            run_cell(folder, "warm-local", ["--device", "cpu"], grid)
            ratios, walls, copies = [], [], []
            for pair in range(args.pairs):  # alternated: local, remote
                local_ms, local_s, _ = run_cell(folder, f"local-{pair}", ["--device", "cpu"], grid)
                remote_ms, remote_s, copied = run_cell(folder, f"remote-{pair}", remote, grid)
                ratios.append(remote_ms / local_ms)
                walls.append(remote_s / local_s)
                copies.append(copied)
                print(f"pair {pair + 1}: local {local_ms:.4f} ms in {local_s:.1f} s, remote {remote_ms:.4f} ms in "
                      f"{remote_s:.1f} s, copied {copied} bytes")
        finally:
            sshd.kill()
    ratio, wall = statistics.median(ratios), statistics.median(walls)
    checks = [(f"remote median / local median = {ratio:.3f} (within 3 %)", abs(ratio - 1) <= 0.03),
              (f"wall time per cell, remote / local = {wall:.2f} (at most 1.5)", wall <= 1.5),
              (f"first run copied {first_copy} bytes; each later run copied {copies} (all 0)", all(c == 0 for c in copies))]
    print(f"\nissue 24 over loopback ({args.model}, batch {args.batch}, {args.shape}, {args.pairs} alternated pairs):")
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

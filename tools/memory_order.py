"""Does a cell's peak memory depend on what ran before it? And what does one measurement cost?

Measures resnet18 (batch 1, 64x64) alone, and after resnet50 (batch 8, 224x224) in the same process,
each cell warmed up first as the suite does; every order runs in fresh processes, a few times. Prints
both figures of ``measure_peak_memory`` (``peak_mem_bytes`` from torch's own allocations,
``peak_rss_bytes`` from the resident high-water) and the seconds one measurement took. With
``--no-trim`` the freed heap is not handed back before the baseline, to show why it has to be.

    python tools/memory_order.py [--repeats 3] [--no-trim]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
import torchvision

from pytest_edgeprof.measure import memory

SMALL = ("resnet18", 1, 64)
LARGE = ("resnet50", 8, 224)


def measure_cell(name: str, batch: int, size: int) -> dict[str, object]:
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(batch, 3, size, size)

    def forward() -> object:
        with torch.inference_mode():
            return model(x)

    for _ in range(2):  # warm-up, as before the timed region of a cell
        forward()
    start = time.perf_counter()
    reading = memory.measure_peak_memory(forward, torch.device("cpu"))
    measure_s = time.perf_counter() - start
    start = time.perf_counter()
    forward()
    forward_s = time.perf_counter() - start
    return {"cell": f"{name}-b{batch}-{size}", "peak_mem_bytes": reading.peak_mem_bytes,
            "peak_rss_bytes": reading.peak_rss_bytes, "measure_s": measure_s, "forward_s": forward_s}


def child(order: str, trim: bool) -> None:
    torch.set_num_threads(1)
    if not trim:
        memory._return_freed_heap = lambda: None
    cells = [SMALL] if order == "alone" else [LARGE, SMALL]
    print(json.dumps([measure_cell(*cell) for cell in cells]))


def run(order: str, trim: bool) -> list[dict[str, object]]:
    command = [sys.executable, __file__, "--child", order] + ([] if trim else ["--no-trim"])
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def spread(values: list[int]) -> str:
    return f"{min(values) / 1e6:.3f}-{max(values) / 1e6:.3f} MB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-trim", action="store_true")
    parser.add_argument("--child", choices=["alone", "after"])
    args = parser.parse_args()
    if args.child:
        child(args.child, trim=not args.no_trim)
        return
    small = {order: [] for order in ("alone", "after")}
    for _ in range(args.repeats):
        for order in small:
            rows = run(order, trim=not args.no_trim)
            small[order].append(rows[-1])
            for row in rows:
                print(f"{order:5} {row['cell']:16} peak_mem {row['peak_mem_bytes']:>11,}  peak_rss "
                      f"{row['peak_rss_bytes']:>11,}  measurement {row['measure_s']:.3f} s "
                      f"(one forward {row['forward_s']:.3f} s)")
    for key in ("peak_mem_bytes", "peak_rss_bytes"):
        alone = [row[key] for row in small["alone"]]
        after = [row[key] for row in small["after"]]
        print(f"{SMALL[0]} {key}: alone {spread(alone)}, after {LARGE[0]} {spread(after)}")


if __name__ == "__main__":
    main()

"""Is the CPU peak-memory figure independent of what ran before? And what does a measurement cost?

Measures resnet18 (batch 1, 64x64) alone, and again after resnet50 (batch 8, 224x224) in the same
process, each cell warmed up first as the suite does, and prints both figures of
``measure_peak_memory`` with the relative difference and the time one measurement took.

    python benchmarks/memory_order.py            # both orders, each in a fresh process
    python benchmarks/memory_order.py alone      # one order, in this process
    python benchmarks/memory_order.py after
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import torch
import torchvision

from pytest_edgeprof.memory import measure_peak_memory

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
    reading = measure_peak_memory(forward, torch.device("cpu"))
    seconds = time.perf_counter() - start
    return {"cell": f"{name}-b{batch}-{size}", "peak_mem_bytes": reading.peak_mem_bytes,
            "peak_rss_bytes": reading.peak_rss_bytes, "seconds": round(seconds, 3)}


def run_order(order: str) -> list[dict[str, object]]:
    cells = [SMALL] if order == "alone" else [LARGE, SMALL]
    return [measure_cell(*cell) for cell in cells]


def main() -> None:
    torch.set_num_threads(1)
    if len(sys.argv) > 1:
        print(json.dumps(run_order(sys.argv[1])))
        return
    results = {}
    for order in ("alone", "after"):
        out = subprocess.run([sys.executable, __file__, order], capture_output=True, text=True, check=True)
        results[order] = json.loads(out.stdout.strip().splitlines()[-1])
        for row in results[order]:
            print(order, row)
    alone, after = results["alone"][-1], results["after"][-1]
    for key in ("peak_mem_bytes", "peak_rss_bytes"):
        diff = (after[key] - alone[key]) / max(alone[key], 1)
        print(f"{key}: alone {alone[key]:,}  after larger cell {after[key]:,}  difference {diff:+.1%}")


if __name__ == "__main__":
    main()

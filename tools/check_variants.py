"""Checks that the suite's pruned variants really are what their ids say.

    python tools/check_variants.py [--models resnet50,mobilenet_v3_large] [--targets 0.25,0.5]

Runs the real suite (benchmarks/test_inference.py) with --prune at the models' own input size, reads
the saved run, and prints, per model and variant, the saved FLOPs as a fraction of base's. The bar:
within 1 percentage point of 1 - target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pytest

SUITE = str(Path(__file__).resolve().parents[1] / "benchmarks" / "test_inference.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,mobilenet_v3_large")
    parser.add_argument("--targets", default="0.25,0.5")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        code = pytest.main([SUITE, "-q", "-p", "no:cacheprovider", "--device", "cpu", "--no-energy",
                            "--models", args.models, "--batch-sizes", "1", "--shapes", "224", "--prune", args.targets,
                            "--benchmark-max-time", "0.1", f"--benchmark-json={out}"])
        if code != 0:
            return int(code)
        cells = [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]
    base = {c["model"]: c["flops"] for c in cells if c["variant"] == "base"}
    ok = True
    print(f"{'model':20} {'variant':8} {'target':>7} {'flops / base':>13} {'expected':>9} {'off by':>8}")
    for cell in cells:
        if cell["variant"] == "base":
            continue
        kept, expected = cell["flops"] / base[cell["model"]], 1 - cell["prune_target"]
        ok &= abs(kept - expected) <= 0.01
        print(f"{cell['model']:20} {cell['variant']:8} {cell['prune_target']:7.2f} {kept:13.4f} {expected:9.2f} "
              f"{(kept - expected) * 100:+7.2f}pp")
    print("all within 1 pp" if ok else "SOME OUTSIDE 1 pp")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

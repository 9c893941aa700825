"""Precision and runtime configurations side by side: latency, peak memory, model bytes, and accuracy kept.

    python tools/check_configurations.py [--models resnet50,mobilenet_v3_large] [--batch-sizes 1,8]

1. Runs the real suite (benchmarks/test_inference.py) at 224² over fp32 and int8 x eager, compile and
   onnxruntime, and prints per cell the median latency, the peak memory and the model's bytes; the bar:
   every int8 model at most 30 % of its fp32 model's bytes.
2. Trains the digits CNN (scikit-learn's handwritten digits) and prints its top-1 in each configuration
   against float32; the bar: int8 within 2 points, fp16 and bf16 within 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pytest

SUITE = str(Path(__file__).resolve().parents[1] / "benchmarks" / "test_inference.py")
ACCURACY_BARS = {"int8": 2.0, "fp16": 1.0, "bf16": 1.0, "fp32": 0.0}


def suite_cells(models: str, batch_sizes: str, max_time: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        code = pytest.main([SUITE, "-q", "-p", "no:cacheprovider", "--device", "cpu", "--no-energy", "--models", models,
                            "--batch-sizes", batch_sizes, "--shapes", "224", "--precision", "fp32,int8",
                            "--runtime", "eager,compile,onnxruntime", "--benchmark-max-time", max_time,
                            f"--benchmark-json={out}", "-W", "ignore"])
        if code not in (0, 1):
            sys.exit(int(code))
        return [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]


def print_cells(cells: list[dict]) -> bool:
    fp32_bytes = {(c["model"], c["runtime"]): c["model_bytes"] for c in cells if c["precision"] == "fp32"}
    ok = True
    print(f"{'cell':48} {'median ms':>10} {'±95% CI':>8} {'peak MB':>9} {'model MB':>9} {'of fp32':>8}")
    for c in cells:
        share = c["model_bytes"] / fp32_bytes[(c["model"], c["runtime"])]
        if c["precision"] == "int8":
            ok &= share <= 0.30
        interval = c.get("latency_ms_ci95")  # none under 6 rounds
        half = f"{(interval[1] - interval[0]) / 2 / c['latency_ms_median']:.1%}" if interval else "-"
        print(f"{c['model']}-{c['precision']}-{c['runtime']}-b{c['batch_size']:<4} "[:48].ljust(48)
              + f" {c['latency_ms_median']:10.2f} {half:>8} {c['peak_mem_bytes'] / 1e6:9.1f} "
              f"{c['model_bytes'] / 1e6:9.2f} {share:8.0%}")
    print("int8 models within 30 % of fp32 bytes" if ok else "SOME int8 MODEL OVER 30 % OF fp32 BYTES")
    return ok


def digits_accuracy() -> bool:
    from digits_cnn import DIGIT_SHAPE, digit_net, digits_split, train_net
    from torch.utils.data import DataLoader

    from pytest_edgeprof.measurement import Cell
    from pytest_edgeprof.models.accuracy import evaluate
    from pytest_edgeprof.models.deploy.calibration import Calibration
    from pytest_edgeprof.models.deploy.deployer import Deployer

    train_set, test_set = digits_split()
    model = train_net(digit_net(), train_set)
    reference = evaluate(model, DataLoader(test_set, batch_size=128)).top1
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        deployer = Deployer(Calibration(given=train_set.tensors[0][:64]), cache_dir=Path(tmp))
        print(f"\ndigits CNN top-1, float32 eager: {reference:.2f} %")
        for precision, runtime in (("int8", "eager"), ("int8", "compile"), ("int8", "onnxruntime"),
                                   ("fp32", "onnxruntime"), ("bf16", "eager"), ("fp16", "eager")):
            deployed = deployer.deploy(model, Cell("digits", "base", 128, DIGIT_SHAPE, precision, runtime), "cpu", {})
            top1 = evaluate(deployed.predict, DataLoader(test_set, batch_size=128)).top1
            drop = reference - top1
            ok &= abs(drop) <= ACCURACY_BARS[precision]
            print(f"  {precision} {runtime:12} {top1:6.2f} %  drop {drop:+.2f} points (bar {ACCURACY_BARS[precision]:g})")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,mobilenet_v3_large")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--max-time", default="3", help="--benchmark-max-time per cell")
    args = parser.parse_args()
    ok = print_cells(suite_cells(args.models, args.batch_sizes, args.max_time))
    ok &= digits_accuracy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

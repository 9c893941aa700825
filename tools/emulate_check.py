"""How well does ``--emulate host`` predict this machine's own latencies?

Both run torch on one thread (``OMP_NUM_THREADS=1``): the 2 cores of this project's machine are shared
with other work, and a parallel region whose second thread is preempted can take ten times as long.

``fit`` measures the models the fit uses (FIT_MODELS, none of them among the checked ones) at batch
1, 4, 16 x 224², 160², 112² (but b16 at 224²), and fits the per-kind efficiencies and the launch cost of
the roofline (``measure/roofline.py``'s fit) against this machine's probed peaks;
it prints the ``RooflineEfficiency`` to put in ``measure/emulation.py``'s ``HOST_CPU_EFFICIENCY``.

``check`` runs the suite with ``--emulate host`` over CHECK_MODELS x batch 1, 4, 16 x 224², 160², 112²
(54 cells) and prints ``edgeprof emulate-check`` of that run: predicted against measured per cell, the
shares within ±10/25/50 % and the worst cell.

    python tools/emulate_check.py fit
    python tools/emulate_check.py check [--out run.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

from pytest_edgeprof.device import cpu_profile
from pytest_edgeprof.measure.peak import probe_peak
from pytest_edgeprof.measure.roofline import Observation, bounds_s, fit, kernels

# The models HOST_CPU_EFFICIENCY is fitted on, and the depthwise-heavy and dense ones the self-prediction
# check holds its predictions against: none of them fitted on.
FIT_MODELS = ("resnet34", "mobilenet_v2", "mnasnet1_0", "shufflenet_v2_x1_0", "regnet_x_400mf", "alexnet",
              "googlenet", "efficientnet_b1", "densenet169")
CHECK_MODELS = ("densenet121", "regnet_y_400mf", "efficientnet_b0", "squeezenet1_1", "resnet18", "mobilenet_v3_small")
SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "test_inference.py"
BATCHES = (1, 4, 16)
SIZES = (224, 160, 112)
FIT_CELLS = tuple((batch, size) for size in SIZES for batch in BATCHES if (batch, size) != (16, 224))
THREADS = 1


def median_forward_s(model: torch.nn.Module, x: torch.Tensor, budget_s: float = 1.0) -> float:
    """The median of at least 3 and at most 15 calls, after 2 warm-up calls, within about ``budget_s``."""
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        times: list[float] = []
        while len(times) < 3 or (sum(times) < budget_s and len(times) < 15):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_fit() -> None:
    torch.set_num_threads(THREADS)
    peak = probe_peak("cpu", "fp32")
    print(f"host peak: {peak.flops_per_s / 1e9:.1f} GFLOP/s, {peak.bytes_per_s / 1e9:.1f} GB/s ({peak.method})")
    observations = []
    for name in FIT_MODELS:
        model = torchvision.models.get_model(name).eval()
        for batch, size in FIT_CELLS:
            found = kernels(model, (3, size, size), batch)
            measured = median_forward_s(model, torch.randn(batch, 3, size, size))
            observations.append(Observation(bounds_s(found, "fp32", peak.flops_per_s, peak.bytes_per_s),
                                            len(found), measured))
            print(f"  {name} b{batch} {size}²: {measured * 1e3:.2f} ms, {len(found)} kernels", flush=True)
    efficiency = fit(observations, f"fitted on {cpu_profile().description} from {', '.join(FIT_MODELS)}")
    errors = [sum(s / efficiency.per_kind[k] for k, s in o.bounds_s.items()) / o.measured_s
              + efficiency.launch_s * o.kernels / o.measured_s - 1 for o in observations]
    within = sum(abs(e) <= 0.25 for e in errors) / len(errors)
    print(f"in-sample: {within:.0%} of {len(errors)} cells within ±25 %, worst {max(errors, key=abs):+.1%}")
    per_kind = ", ".join(f'"{kind}": {value:.4g}' for kind, value in efficiency.per_kind.items())
    print(f"HOST_CPU_EFFICIENCY = RooflineEfficiency({{{per_kind}}}, {efficiency.launch_s:.4g}, ...)")


def run_check(out: Path | None) -> None:
    out = out or Path(tempfile.mkdtemp()) / "emulate-host.json"
    command = [sys.executable, "-m", "pytest", str(SUITE), "--device", "cpu",
               "--emulate", "host", "--models", ",".join(CHECK_MODELS), "--batch-sizes", ",".join(map(str, BATCHES)),
               "--shapes", ",".join(map(str, SIZES)), "--no-energy", "--benchmark-max-time", "1",
               f"--benchmark-json={out}", "-p", "no:cacheprovider", "-q", "-W", "ignore"]
    start = time.perf_counter()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": str(THREADS)})
    print(f"{len(CHECK_MODELS) * len(BATCHES) * len(SIZES)} cells in {time.perf_counter() - start:.0f} s: {out}")
    subprocess.run([sys.executable, "-m", "pytest_edgeprof.cli", "emulate-check", str(out)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("fit", "check"))
    parser.add_argument("--out", type=Path, default=None, help="check: where the run's JSON goes")
    args = parser.parse_args()
    run_fit() if args.step == "fit" else run_check(args.out)


if __name__ == "__main__":
    main()

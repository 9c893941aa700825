"""Detection, segmentation and attention models: FLOPs against torchvision's `_ops`, latency and peak
memory at batch 1, and pruning to p30.

    python tools/check_tasks.py            # every model below
    python tools/check_tasks.py --models ssdlite320_mobilenet_v3_large --no-prune

Per model (random weights, on the CPU, `--threads` torch threads: 1 by default, since on a machine
shared with other work more threads than free cores make OpenMP's barriers spin and the timings
meaningless):

* **GMACs** counted at the model's own size (`flops_method`: `meta`, or `real-forward` for a detector)
  against torchvision's published `_ops`, and the difference. torchvision's figure leaves a two-stage
  detector's RoI heads out (it equals the backbone + RPN count) and counts a segmenter with the
  auxiliary classifier its weights carry; the compared figure does the same and says so.
* **latency** (median of the stopping rule's rounds, at most `--seconds` of rounds) and **peak memory**
  at batch 1, at the model's own size and at 320² (detection, segmentation) or 224² (classifiers).
  A detector's latency is one forward including its transform and post-processing (NMS).
* **p30**: `prune_to_flops(..., 0.3)` at the model's own size, the FLOPs reduction it achieved, or why
  it was not pruned (within `--prune-seconds`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import warnings

import torch
import torchvision

from pytest_edgeprof.measure.cell import measure_model
from pytest_edgeprof.measure.flops import count_cost, count_model_cost
from pytest_edgeprof.measure.timing import StoppingRule
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.metrics import format_bytes
from pytest_edgeprof.models.prune import PruneUnsupported, prune_to_flops
from pytest_edgeprof.models.zoo import architecture, build_model, reference_input_shape, task_of

MODELS = (
    "ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn",
    "fcos_resnet50_fpn", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large", "fcn_resnet50",
    "vit_b_16", "swin_t", "maxvit_t",
)  # fmt: skip


def compared_gmacs(name: str) -> tuple[float, str, str]:
    """(GMACs comparable to `_ops`, flops_method, what the comparison leaves out or adds)."""
    shape = reference_input_shape(name)
    if task_of(name) == "segmentation":
        try:
            with torch.device("meta"):
                model = architecture(name, aux_loss=True)
            return count_cost(model, shape).macs / 1e9, "meta", "with the aux classifier"
        except NotImplementedError:  # lraspp has no auxiliary classifier
            pass
    cost = count_model_cost(name)
    if cost.data_dependent_flops:
        share = cost.data_dependent_flops / cost.flops
        return (cost.flops - cost.data_dependent_flops) / 2e9, cost.method, f"RoI heads ({share:.0%}) left out"
    return cost.macs / 1e9, cost.method, ""


def latency_and_memory(name: str, side: int, seconds: float) -> str:
    model = build_model(name)
    cell = Cell(name, "base", 1, (3, side, side))
    measured = measure_model(model, cell, "cpu", energy=False, rule=StoppingRule(max_time_s=seconds, min_rounds=3))
    if measured.latency is None or measured.memory is None:
        return f"{measured.outcome.value}: {measured.error}"
    return f"{measured.latency.median_ms:.1f} ms, {format_bytes(measured.memory.peak_mem_bytes)}"


def pruned(name: str, seconds: int) -> str:
    def give_up(signum, frame):
        raise TimeoutError

    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    began = time.perf_counter()
    try:
        result = prune_to_flops(build_model(name), 0.3, reference_input_shape(name))
        return f"{result.achieved:.2%} in {time.perf_counter() - began:.0f} s"
    except PruneUnsupported as error:
        return f"skipped: {error}"
    except TimeoutError:
        return f"not done within {seconds} s"
    finally:
        signal.alarm(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seconds", type=float, default=3.0, help="ceiling of each cell's timed rounds")
    parser.add_argument("--prune-seconds", type=int, default=600)
    parser.add_argument("--no-prune", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads, cpu\n")
    print("| model | task | own size | GMACs counted (method) | `_ops` | diff | b1 own size | b1 320²/224² | p30 achieved |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    worst = 0.0
    for name in args.models.split(","):
        side = reference_input_shape(name)[1]
        small = 224 if task_of(name) == "classification" else 320
        published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
        counted, method, caveat = compared_gmacs(name)
        diff = counted / published - 1
        worst = max(worst, abs(diff))
        own = latency_and_memory(name, side, args.seconds)
        other = "(own size)" if small == side else latency_and_memory(name, small, args.seconds)
        prune = "-" if args.no_prune else pruned(name, args.prune_seconds)
        note = f" ({caveat})" if caveat else ""
        print(f"| {name} | {task_of(name)} | {side}² | {counted:.3f} ({method}){note} | {published} | {diff:+.2%} | "
              f"{own} | {other} | {prune} |", flush=True)
    print(f"\nlargest FLOPs difference against `_ops`: {worst:.2%} (bar: 1 %)")
    return 0 if worst <= 0.01 else 1


if __name__ == "__main__":
    sys.exit(main())

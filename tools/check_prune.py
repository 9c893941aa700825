"""Sweep: does pruning hit its FLOPs target within +-1 percentage point, and how long does it take?

    python tools/check_prune.py                       # the study's three models, targets 0.05..0.8
    python tools/check_prune.py --others               # plus a spread of other torchvision CNNs
    python tools/check_prune.py --models resnet18 --targets 0.25,0.5
    python tools/check_prune.py --reload --others      # cache round trip: prune, save, reload, compare

Each row prunes a fresh copy of the model (random weights, magnitude importance) with
``prune_to_flops`` at the model's reference input, the same call the suite makes, and prints the
achieved FLOPs reduction (counted exactly on meta tensors after pruning), its error against the
target, the parameters kept and the seconds taken (the model build is not included). A model
torch-pruning cannot handle prints the reason the suite would skip it with.

With ``--reload`` each model is instead pruned to 0.5 through ``pruned_model`` into a fresh cache
folder, loaded back from it (meta skeleton + replayed history + weights_only state dict), and both
models are run on the same real input: the row prints the load time and the largest output difference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from pytest_edgeprof.models.prune import DEFAULT_TOLERANCE, PruneUnsupported, prune_to_flops, pruned_model
from pytest_edgeprof.models.zoo import build_model, reference_input_shape

STUDY = ("vgg16", "resnet50", "mobilenet_v3_large")
OTHERS = (
    "alexnet", "resnet18", "resnet101", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2",
    "mobilenet_v3_small", "efficientnet_b0", "efficientnet_v2_s", "mnasnet1_0", "regnet_y_400mf",
    "densenet121", "googlenet", "inception_v3", "squeezenet1_1", "shufflenet_v2_x1_0",
    "convnext_tiny", "vit_b_16", "swin_t",
)  # fmt: skip
STUDY_TARGETS = tuple(round(0.05 * i, 2) for i in range(1, 17))  # 0.05, 0.10, ..., 0.80
OTHER_TARGETS = (0.05, 0.25, 0.5, 0.8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma list (default: the study's three models)")
    parser.add_argument("--targets", help="comma list (default: 0.05..0.8 for the study's models, 0.05,0.25,0.5,0.8 else)")
    parser.add_argument("--others", action="store_true", help="also sweep a spread of other torchvision CNNs")
    parser.add_argument("--reload", action="store_true", help="check the cache round trip instead, at target 0.5")
    args = parser.parse_args()
    models = args.models.split(",") if args.models else list(STUDY) + (list(OTHERS) if args.others else [])
    if args.reload:
        return check_reload(models)
    print(f"{'model':<20} {'target':>6} {'achieved':>9} {'error pp':>9} {'params kept':>12} {'seconds':>8}  note")
    misses = 0
    for name in models:
        targets = _targets(args.targets, name)
        model = build_model(name)
        shape = reference_input_shape(name)
        for target in targets:
            started = time.perf_counter()
            try:
                result = prune_to_flops(model, target, shape)
            except PruneUnsupported as error:
                print(f"{name:<20} {target:>6.2f} {'-':>9} {'-':>9} {'-':>12} {time.perf_counter() - started:>8.1f}  unsupported: {error}")
                misses += 1
                continue
            error_pp = 100 * (result.achieved - target)
            kept = result.params_after / result.params_before
            note = "" if abs(error_pp) <= 100 * DEFAULT_TOLERANCE else "MISS"
            misses += bool(note)
            print(
                f"{name:<20} {target:>6.2f} {result.achieved:>9.4f} {error_pp:>+9.2f} {kept:>12.1%} {result.seconds:>8.1f}  {note}",
                flush=True,
            )
        del model
    print(f"{misses} row(s) unsupported or outside +-{100 * DEFAULT_TOLERANCE:g} pp")
    return 0


def check_reload(models: list[str]) -> int:
    print(f"{'model':<20} {'prune s':>8} {'load s':>7} {'max |diff|':>11}  note")
    failures = 0
    for name in models:
        with tempfile.TemporaryDirectory() as cache:
            try:
                pruned = pruned_model(name, 0.5, cache_dir=Path(cache))
            except PruneUnsupported as error:
                print(f"{name:<20} {'-':>8} {'-':>7} {'-':>11}  unsupported: {error}")
                continue
            loaded = pruned_model(name, 0.5, cache_dir=Path(cache))
            x = torch.randn(1, *pruned.input_shape, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                difference = (pruned.model(x) - loaded.model(x)).abs().max().item()
            ok = loaded.from_cache and difference < 1e-4
            failures += not ok
            note = "" if ok else "MISMATCH"
            print(f"{name:<20} {pruned.seconds:>8.1f} {loaded.seconds:>7.2f} {difference:>11.2e}  {note}", flush=True)
    print(f"{failures} model(s) failed the round trip")
    return 0


def _targets(text: str | None, name: str) -> tuple[float, ...]:
    if text:
        return tuple(float(t) for t in text.split(","))
    return STUDY_TARGETS if name in STUDY else OTHER_TARGETS


if __name__ == "__main__":
    sys.exit(main())

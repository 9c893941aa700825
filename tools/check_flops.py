"""Checks FLOPs counting against torchvision's published `_ops` (GMACs per image) for every model.

    python tools/check_flops.py

Counts each torchvision classification model on meta tensors at its own input size and prints the
models whose MACs per image differ from `_ops` by more than 1 % (the bar), and the time taken.
"""

from __future__ import annotations

import sys
import time

import torchvision

from pytest_edgeprof.measure.flops import count_model_cost
from pytest_edgeprof.models.zoo import classification_model_names


def main() -> int:
    began, outside = time.perf_counter(), []
    names = classification_model_names()
    for name in names:
        published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
        counted = count_model_cost(name).macs / 1e9
        if abs(counted - published) > 0.01 * published:
            outside.append(f"{name}: counted {counted:.4f} GMACs, published {published} (rounded to 3 decimals: "
                           f"{'equal' if round(counted, 3) == published else 'different'})")
    print(f"{len(names)} models counted in {time.perf_counter() - began:.0f} s; {len(outside)} outside 1 %")
    for line in outside:
        print("  " + line)
    return 0 if all("equal" in line for line in outside) else 1


if __name__ == "__main__":
    sys.exit(main())

"""How long counting FLOPs takes, and how much memory it needs (a script, not a pytest test).

    python tools/flops_speed.py

Prints, for the study's models at batch 1 and 128, the seconds to count (best of 5, the model already
built on the meta device, as the plugin's repeated calls find it) and the growth of the process's peak
resident memory over the whole run. A real forward pass of VGG16 at batch 128 would need more than
1.6 GB for its first layer's output alone.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_edgeprof.measure.flops import count_model_cost  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def main() -> None:
    start_peak = peak_rss_mib()
    for name in ("vgg16", "resnet50", "mobilenet_v3_large"):
        first = time.perf_counter()
        count_model_cost(name)
        first = time.perf_counter() - first
        for batch in (1, 128):
            times = []
            for _ in range(5):
                began = time.perf_counter()
                cost = count_model_cost(name, batch_size=batch, per_layer=True)
                times.append(time.perf_counter() - began)
            print(
                f"{name:<20} batch {batch:>3}: {cost.macs / 1e9:9.2f} GMACs, {len(cost.layers):>3} layers, "
                f"counted in {min(times) * 1e3:6.1f} ms (first call, building the meta model: {first * 1e3:.0f} ms)"
            )
    print(f"peak RSS grew by {peak_rss_mib() - start_peak:.1f} MiB")


if __name__ == "__main__":
    main()

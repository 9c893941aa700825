"""The options the pytest plugin and the ``edgeprof`` command share, declared once so that their
names, metavars and help agree: ``--device``, ``--weights``, the input shape, the variant and the
storage of saved runs. ``plugin/options.py`` and ``cli.py`` add their defaults and, where the
plugin takes a comma list (``--shapes``), say so around the same text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SharedOption:
    flag: str
    metavar: str
    accepts: str  # what values it takes, without a default: each user adds its own

    def help(self, default: str) -> str:
        return f"{self.accepts} (default: {default})"


DEVICE = SharedOption(
    "--device", "DEVICE",
    "auto (CUDA if present, else CPU), cpu, cuda, cuda:N, jetson (detected from /proc/device-tree/model) "
    "or a device profile such as jetson-nano, jetson-orin-nano",
)
WEIGHTS = SharedOption(
    "--weights", "WEIGHTS",
    "random (latency, memory, energy and FLOPs do not depend on the values), a weights name such as DEFAULT "
    "that is already in the torch cache, or a state-dict path; never downloads",
)
SHAPE = SharedOption("--shape", "SHAPE", "input size: 224 (square) or 224x160 (height x width)")
VARIANT = SharedOption(
    "--variant", "VARIANT", "base or a pruned variant such as p50 (50 % of its FLOPs removed), from the variant cache"
)
STORAGE = SharedOption(
    "--storage", "STORAGE",
    "where saved runs are looked up: a folder or pytest-benchmark's --benchmark-storage URI (file://./.benchmarks)",
)

"""The options the pytest plugin and the ``edgeprof`` command share, declared once so that their
names, metavars and help agree: ``--device``, ``--weights``, the input shape, the variant and the
storage of saved runs. ``plugin/options.py`` and ``cli/`` add their defaults and, where the
plugin takes a comma list (``--shapes``), say so around the same text. The parsers of a shape, a
batch size and any positive integer, and the text of a shape, live here too: they need no torch, so
checking an option's value stays light."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_edgeprof.errors import UsageError


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

_SHAPE = re.compile(r"([0-9]+)(?:[xX]([0-9]+))?")
_POSITIVE_INT = re.compile(r"[0-9]+")
# Bounds far above any real batch or image, chosen so that a float32 input of the largest batch of the
# largest shape still has a size torch can count in int64 bytes (2**29 * 3 * 2**15 * 2**15 * 4 < 2**63):
# a larger value is a usage error here, not an overflow inside torch mid-run.
MAX_BATCH_SIZE = 2**29
MAX_SIDE = 2**15


def parse_shape(text: str) -> tuple[int, int, int]:
    """Parse an input size: ``"224"`` is (3, 224, 224), ``"224x160"`` is (3, 224, 160), height x width."""
    match = _SHAPE.fullmatch(str(text).strip())
    height = int(match[1]) if match else 0
    width = int(match[2] or match[1]) if match else 0
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise UsageError(f"bad input shape {text!r}: expected a size like 224 or HxW like 224x160 "
                         f"(positive integers up to {MAX_SIDE})")
    return (3, height, width)


def parse_batch_size(text: str) -> int:
    """Parse a batch size: a positive integer such as ``"8"``."""
    return parse_positive_int(text, f"bad batch size {text!r}: expected a positive integer like 1 or 32, up to {MAX_BATCH_SIZE}",
                              MAX_BATCH_SIZE)


def parse_positive_int(text: object, error: str, maximum: int = 2**63 - 1) -> int:
    """``text`` as a positive integer up to ``maximum`` (ASCII digits, blanks around ignored: ``str.isdigit``
    alone takes '²'); ``UsageError(error)`` where it is not one."""
    cleaned = str(text).strip()
    if not _POSITIVE_INT.fullmatch(cleaned) or not 1 <= int(cleaned) <= maximum:
        raise UsageError(error)
    return int(cleaned)


def shape_text(shape: Sequence[int]) -> str:
    """A shape as ``x``-joined sizes: (3, 224, 224) -> ``3x224x224``."""
    return "x".join(str(d) for d in shape)


def size_text(input_shape: Sequence[int]) -> str:
    """A (C, H, W) input's height x width, as ``--shape`` takes it and a cell id shows it: ``224x160``."""
    return shape_text(input_shape[1:])


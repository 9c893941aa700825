"""The one registry of metrics: per metric its ``extra_info`` key, unit, which way is worse, label,
budget parser and formatter.

Budgets (``--budget``, the ``budget`` marker), ``edgeprof compare --fail``, ``edgeprof limits
--objective``, the report's axes and the marker's help text all read :data:`METRICS`; adding a
metric is one entry here plus the code that measures it. The keys are those of docs/saved-keys.md's
table.

Units say themselves (docs/options.md, "Budgets"): ``2.6GB`` is 2.6 × 10⁹ bytes, ``2.6GiB`` is 2.6 × 2³⁰,
``50ms``, ``0.5J``, ``20ips``; ``top1=70`` (or ``70%``) is a percentage, ``map=0.3`` and ``miou=0.5``
are scores between 0 and 1. Anything else raises
``UsageError`` with one line naming the bad text and the accepted form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pytest_edgeprof.errors import UsageError

# --- parsing quantities ----------------------------------------------------------------------------

_NUMBER = r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"  # ASCII digits only, no sign, no exponent

_DECIMAL_BYTES = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_BINARY_BYTES = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_BYTE_UNITS = {**_DECIMAL_BYTES, **_BINARY_BYTES}
_DURATION_UNITS_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_ENERGY_UNITS_J = {"mJ": 1e-3, "J": 1.0, "kJ": 1e3}
_RATE_UNITS_IPS = {"ips": 1.0}


def _parse_quantity(text: str, units: Mapping[str, float], what: str, example: str) -> tuple[float, str]:
    """Return (number × unit factor, unit) for ``text`` like ``2.6GB``; raise UsageError otherwise."""
    pattern = _NUMBER + r"\s*(?P<unit>" + "|".join(re.escape(u) for u in units) + r")"
    match = re.fullmatch(pattern, text.strip()) if isinstance(text, str) else None
    if match is not None:
        value = float(match["number"]) * units[match["unit"]]
        if math.isfinite(value) and value > 0:
            return value, match["unit"]
    raise _bad_quantity(text, units, what, example)


def _bad_quantity(text: str, units: Mapping[str, float], what: str, example: str) -> UsageError:
    accepted = ", ".join(units)
    expected = f"expected a positive number and its unit, e.g. {example} (units: {accepted})"
    return UsageError(f"bad {what} {text!r}: {expected}")


MAX_BYTES = 2**62  # 4 EiB, beyond any memory: a size the OS's limits (a C long) can still take


def parse_bytes(text: str) -> int:
    """``"2.6GB"`` -> 2_600_000_000, ``"2.6GiB"`` -> 2.6 × 2³⁰, rounded to whole bytes, up to 4 EiB.
    Bare numbers are rejected."""
    value, _ = _parse_quantity(text, _BYTE_UNITS, "size", "2.6GB or 512MiB")
    if value < 1:
        raise _bad_quantity(text, _BYTE_UNITS, "size", "2.6GB or 512MiB")
    if round(value) > MAX_BYTES:
        raise UsageError(f"bad size {text!r}: expected a positive number and its unit up to 4 EiB, e.g. 2.6GB or 512MiB")
    return round(value)


def parse_duration_ms(text: str) -> float:
    """``"50ms"`` -> 50.0, ``"0.5s"`` -> 500.0, ``"200us"`` -> 0.2 (milliseconds)."""
    return _parse_quantity(text, _DURATION_UNITS_MS, "duration", "50ms or 0.5s")[0]


def parse_energy_j(text: str) -> float:
    """``"0.5J"`` -> 0.5, ``"500mJ"`` -> 0.5 (joules)."""
    return _parse_quantity(text, _ENERGY_UNITS_J, "energy", "0.5J or 500mJ")[0]


def parse_rate_ips(text: str) -> float:
    """``"20ips"`` -> 20.0 (images per second)."""
    return _parse_quantity(text, _RATE_UNITS_IPS, "rate", "20ips")[0]


def parse_percent(text: str) -> float:
    """``"70"`` or ``"70%"`` -> 70.0; more than 0, at most 100."""
    match = re.fullmatch(_NUMBER + r"\s*%?", text.strip()) if isinstance(text, str) else None
    if match is not None and 0 < float(match["number"]) <= 100:
        return float(match["number"])
    raise UsageError(f"bad percentage {text!r}: expected a number above 0 and at most 100, e.g. 70 or 70%")


def parse_fraction(text: str) -> float:
    """``"0.3"`` -> 0.3: a score above 0 and at most 1 (mAP, mIoU)."""
    match = re.fullmatch(_NUMBER, text.strip()) if isinstance(text, str) else None
    if match is not None and 0 < float(match["number"]) <= 1:
        return float(match["number"])
    raise UsageError(f"bad score {text!r}: expected a number above 0 and at most 1, e.g. 0.3")


def parse_latency_ci(text: str) -> float:
    """``--latency-ci 1%`` -> 0.01: a percentage above 0 and at most 50."""
    match = re.fullmatch(_NUMBER + r"\s*%", text.strip()) if isinstance(text, str) else None
    if match is None or not 0 < float(match["number"]) <= 50:
        raise UsageError(f"bad --latency-ci {text!r}: expected a percentage above 0 and at most 50, e.g. 1% or 0.5%")
    return float(match["number"]) / 100


# --- formatting ------------------------------------------------------------------------------------
# Every formatter takes (value, like=None, digits=3): ``like`` is a budget's text whose unit the result
# is written in (so a verdict reads in the user's unit); without it the unit is chosen for the value.


def _significant(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, written out (never ``1e+03``), no trailing zeros."""
    return format(Decimal(f"{value:.{digits}g}"), "f")


def _scaled(value: float, units: list[tuple[str, float]], digits: int, suffix: str = "") -> str:
    """Write ``value`` in the largest unit (ascending list) in which it still reads 1 or more."""
    chosen_name, chosen_factor = units[0]
    for name, factor in units:
        if float(f"{abs(value) / factor:.{digits}g}") >= 1:
            chosen_name, chosen_factor = name, factor
    return f"{_significant(value / chosen_factor, digits)} {chosen_name}{suffix}"


_DECIMAL_SCALE: list[tuple[str, float]] = [("B", 1), ("kB", 10**3), ("MB", 10**6), ("GB", 10**9), ("TB", 10**12)]
_BINARY_SCALE: list[tuple[str, float]] = [("B", 1), ("KiB", 2**10), ("MiB", 2**20), ("GiB", 2**30), ("TiB", 2**40)]
_COUNT_SCALE: list[tuple[str, float]] = [("", 1), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)]


def _unit_of(like: str | None, units: Mapping[str, float]) -> str | None:
    if like is not None:
        for unit in sorted(units, key=len, reverse=True):
            if like.strip().endswith(unit):
                return unit
    return None


def format_bytes(n: float, like: str | None = None, digits: int = 3) -> str:
    """``2.81e9`` -> ``"2.81 GB"``; in binary units (``GiB``) when ``like``, a budget's text, is written in them."""
    binary = like is not None and "iB" in like
    return _scaled(n, _BINARY_SCALE if binary else _DECIMAL_SCALE, digits)


def format_duration_ms(ms: float, like: str | None = None, digits: int = 3) -> str:
    """``61.2`` -> ``"61.2 ms"``, ``1500`` -> ``"1.5 s"``; in the unit of ``like`` (``"0.5s"``) when given."""
    unit = _unit_of(like, _DURATION_UNITS_MS) or ("s" if abs(ms) >= 1000 else "ms")
    return f"{_significant(ms / _DURATION_UNITS_MS[unit], digits)} {unit}"


def format_energy_j(joules: float, like: str | None = None, digits: int = 3) -> str:
    """``0.61`` -> ``"610 mJ"``, ``2.5`` -> ``"2.5 J"``; in the unit of ``like`` (``"0.5J"``) when given."""
    unit = _unit_of(like, _ENERGY_UNITS_J) or ("mJ" if abs(joules) < 1 else "J")
    return f"{_significant(joules / _ENERGY_UNITS_J[unit], digits)} {unit}"


def format_rate_ips(ips: float, like: str | None = None, digits: int = 3) -> str:
    """``12.34`` -> ``"12.3 ips"``, ``1234.5`` -> ``"1234 ips"`` (whole images per second from 100 on)."""
    if like is None and abs(ips) >= 100:
        return f"{ips:.0f} ips"
    return f"{_significant(ips, digits)} ips"


def format_percent(percent: float, like: str | None = None, digits: int | None = None) -> str:
    """``69.8`` -> ``"69.80 %"``; to ``digits`` significant digits when given (a verdict's precision)."""
    return f"{percent:.2f} %" if digits is None else f"{_significant(percent, digits)} %"


def format_score(score: float, like: str | None = None, digits: int | None = None) -> str:
    """A score from 0 to 1: ``0.3124`` -> ``"0.312"``; to ``digits`` significant digits when given (a verdict's precision)."""
    return f"{score:.3f}" if digits is None else _significant(score, digits)


def format_flops(n: float, like: str | None = None, digits: int = 3) -> str:
    """``4.09e9`` -> ``"4.09 GFLOPs"``."""
    return _scaled(n, _COUNT_SCALE, digits, suffix="FLOPs")


def format_flop_rate(n: float, like: str | None = None, digits: int = 3) -> str:
    """``1.2e11`` -> ``"120 GFLOP/s"``."""
    return _scaled(n, _COUNT_SCALE, digits, suffix="FLOP/s")


def format_fraction(fraction: float, like: str | None = None, digits: int = 3) -> str:
    """``0.123`` -> ``"12.3 %"``: a fraction as a percentage."""
    return f"{_significant(fraction * 100, digits)} %"


# --- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric of a cell, as every part of edgeprof names, parses, formats and judges it."""

    name: str  # the short name on command lines and markers: budget memory=..., --fail latency:10%
    key: str  # its key in pytest-benchmark's extra_info (docs/saved-keys.md)
    unit: str  # the base unit values are kept in: bytes, ms, J, ips, %, FLOPs, FLOP/s, fraction, score (0 to 1)
    worse: Literal["higher", "lower"]
    label: str  # how a line names it: "peak memory 2.81 GB > budget 2.6 GB"
    format: Callable[..., str]  # (value, like=a budget's text, digits=n) -> text
    parse: Callable[[str], float] | None = None  # a budget's text -> value in the base unit; None: no budget
    example: str = ""  # a budget value for messages and help, e.g. 2.6GB
    compared: bool = True  # shown by compare, limits and the report (p99, top5: budgets only; FLOP/s and efficiency
    # follow from latency and FLOPs)
    change_unit: Literal["%", "pp"] = "%"  # compare --fail: percent of A, or percentage points
    predicts: str = ""  # an emulated target's predicted figure: the name of the measured metric it predicts

    @property
    def bound(self) -> Literal["upper", "lower"]:
        """A budget on it is an upper bound (worse when higher) or a lower bound."""
        return "upper" if self.worse == "higher" else "lower"

    @property
    def budgetable(self) -> bool:
        return self.parse is not None


LATENCY = Metric("latency", "latency_ms_median", "ms", "higher", "median latency", format_duration_ms,
                 parse_duration_ms, "50ms")
P99 = Metric("p99", "latency_ms_p99", "ms", "higher", "p99 latency", format_duration_ms, parse_duration_ms, "80ms",
             compared=False)
THROUGHPUT = Metric("throughput", "throughput_ips", "ips", "lower", "throughput", format_rate_ips, parse_rate_ips, "20ips")
MEMORY = Metric("memory", "peak_mem_bytes", "bytes", "higher", "peak memory", format_bytes, parse_bytes, "2.6GB")
ENERGY = Metric("energy", "energy_j_per_image", "J", "higher", "energy per image", format_energy_j, parse_energy_j, "0.5J")
FLOPS = Metric("flops", "flops", "FLOPs", "higher", "FLOPs", format_flops)
FLOPS_PER_S = Metric("flops_per_s", "flops_per_s", "FLOP/s", "lower", "achieved FLOP/s", format_flop_rate,
                     compared=False)
EFFICIENCY = Metric("efficiency", "efficiency", "fraction", "lower", "efficiency (of the device's peak FLOP/s)",
                    format_fraction, compared=False)
TOP1 = Metric("top1", "top1", "%", "lower", "top-1 accuracy", format_percent, parse_percent, "70", change_unit="pp")
TOP5 = Metric("top5", "top5", "%", "lower", "top-5 accuracy", format_percent, parse_percent, "70", compared=False,
              change_unit="pp")
# A detector's and a segmenter's own accuracy, as torchmetrics computes them (models/task_accuracy.py).
MAP = Metric("map", "map", "score", "lower", "mAP@[.5:.95]", format_score, parse_fraction, "0.3")
MIOU = Metric("miou", "miou", "score", "lower", "mIoU", format_score, parse_fraction, "0.5")

# An emulated target's figures (--emulate): predicted, never measured, so never under the measured keys.
TARGET_MEMORY = Metric("target_memory", "target_peak_mem_bytes", "bytes", "higher", "predicted peak memory",
                       format_bytes, predicts="memory")
TARGET_LATENCY = Metric("target_latency", "target_latency_ms", "ms", "higher", "predicted latency", format_duration_ms,
                        predicts="latency")
TARGET_ENERGY = Metric("target_energy", "target_energy_j_per_image", "J", "higher", "predicted energy per image",
                       format_energy_j, predicts="energy")
TARGET_THROUGHPUT = Metric("target_throughput", "target_throughput_ips", "ips", "lower", "predicted throughput",
                           format_rate_ips, predicts="throughput")

# In this order everywhere: budget verdicts, the failure lines, compare's rows, limits' numbers.
METRICS: dict[str, Metric] = {m.name: m for m in (MEMORY, LATENCY, P99, ENERGY, THROUGHPUT, FLOPS, FLOPS_PER_S, EFFICIENCY,
                                                  TOP1, TOP5, MAP, MIOU, TARGET_MEMORY, TARGET_LATENCY, TARGET_ENERGY,
                                                  TARGET_THROUGHPUT)}
# measured metric name -> the target's predicted twin; budgets of an emulated run judge the twin
PREDICTED: dict[str, Metric] = {m.predicts: m for m in METRICS.values() if m.predicts}
DEVICE_INDEPENDENT = frozenset({TOP1.name, TOP5.name, MAP.name, MIOU.name})  # the same on the target as on the host
COMPARED: tuple[Metric, ...] = tuple(m for m in METRICS.values() if m.compared)
BUDGETS: tuple[Metric, ...] = tuple(m for m in METRICS.values() if m.budgetable)
# edgeprof limits --objective NAME: what "best" means among the cells within every budget.
OBJECTIVES: dict[str, Metric] = {"throughput": THROUGHPUT, "energy": ENERGY, "latency": LATENCY, "accuracy": TOP1,
                                  "map": MAP, "miou": MIOU}


def metric(name: str) -> Metric:
    """The metric of a short name (``memory``) or an ``extra_info`` key (``peak_mem_bytes``)."""
    for m in METRICS.values():
        if name in (m.name, m.key):
            return m
    raise UsageError(f"unknown metric {name!r}; accepted: {', '.join(m.name for m in COMPARED)}")


def budget_metric(name: object) -> Metric:
    """The metric a budget names; an unknown name is a UsageError listing the accepted ones."""
    found = METRICS.get(name.strip()) if isinstance(name, str) else None
    if found is None or not found.budgetable:
        raise UsageError(f"unknown budget metric {name!r}; accepted: {', '.join(m.name for m in BUDGETS)}")
    return found


def objective_metric(objective: str) -> Metric:
    if objective not in OBJECTIVES:
        raise UsageError(f"unknown objective {objective!r}; accepted: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[objective]


def number(value: object) -> float | None:
    """A saved value as a metric's number: finite int or float (not bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)

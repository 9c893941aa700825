"""Resource budgets: parsing the user's text, checking a cell's measurements, the failure line.

A budget names a metric and a limit with its unit (DESIGN.md): ``memory=2.6GB`` is 2.6 × 10⁹ bytes,
``memory=2.6GiB`` is 2.6 × 2³⁰, ``latency=50ms``, ``energy=0.5J``, ``throughput=20ips``; ``top1=70``
(or ``70%``) is a percentage. Memory, latency and energy are upper bounds, throughput and accuracy
lower bounds. Budgets come in layers, later ones winning: the device's memory capacity, the ini key,
``--budget`` on the command line, the ``budget`` marker (``merge_budgets``).

Anything that is not such text raises ``UsageError`` with one line naming the bad text and the
accepted form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pytest_edgeprof.errors import UsageError

# --- units -----------------------------------------------------------------------------------------

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


def parse_bytes(text: str) -> int:
    """``"2.6GB"`` -> 2_600_000_000, ``"2.6GiB"`` -> 2.6 × 2³⁰, rounded to whole bytes. Bare numbers are rejected."""
    value, _ = _parse_quantity(text, _BYTE_UNITS, "size", "2.6GB or 512MiB")
    if value < 1:
        raise _bad_quantity(text, _BYTE_UNITS, "size", "2.6GB or 512MiB")
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


# --- formatting ------------------------------------------------------------------------------------


def _significant(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, written out (never ``1e+03``), no trailing zeros."""
    return format(Decimal(f"{value:.{digits}g}"), "f")


def _scaled(value: float, units: list[tuple[str, int]], digits: int) -> str:
    """Write ``value`` in the largest unit (ascending list) in which it still reads 1 or more."""
    chosen_name, chosen_factor = units[0]
    for name, factor in units:
        if float(f"{abs(value) / factor:.{digits}g}") >= 1:
            chosen_name, chosen_factor = name, factor
    return f"{_significant(value / chosen_factor, digits)} {chosen_name}"


_DECIMAL_SCALE = [("B", 1), ("kB", 10**3), ("MB", 10**6), ("GB", 10**9), ("TB", 10**12)]
_BINARY_SCALE = [("B", 1), ("KiB", 2**10), ("MiB", 2**20), ("GiB", 2**30), ("TiB", 2**40)]


def format_bytes(n: float, like: str | None = None, digits: int = 3) -> str:
    """``2.81e9`` -> ``"2.81 GB"``; in binary units (``GiB``) when ``like``, a budget's text, is written in them."""
    binary = like is not None and "iB" in like
    return _scaled(n, _BINARY_SCALE if binary else _DECIMAL_SCALE, digits)


def _unit_of(like: str | None, units: Mapping[str, float], default: str) -> str:
    if like is not None:
        for unit in sorted(units, key=len, reverse=True):
            if like.strip().endswith(unit):
                return unit
    return default


def format_duration_ms(ms: float, like: str | None = None, digits: int = 3) -> str:
    """``61.2`` -> ``"61.2 ms"``; in the unit of ``like`` (``"0.5s"`` -> seconds) when given."""
    unit = _unit_of(like, _DURATION_UNITS_MS, "ms")
    return f"{_significant(ms / _DURATION_UNITS_MS[unit], digits)} {unit}"


def format_energy_j(joules: float, like: str | None = None, digits: int = 3) -> str:
    """``0.61`` -> ``"0.61 J"``; in the unit of ``like`` (``"500mJ"`` -> millijoules) when given."""
    unit = _unit_of(like, _ENERGY_UNITS_J, "J")
    return f"{_significant(joules / _ENERGY_UNITS_J[unit], digits)} {unit}"


def format_rate_ips(ips: float, like: str | None = None, digits: int = 3) -> str:
    """``12.3`` -> ``"12.3 ips"``."""
    return f"{_significant(ips, digits)} ips"


def format_percent(percent: float, like: str | None = None, digits: int = 3) -> str:
    """``69.8`` -> ``"69.8 %"``."""
    return f"{_significant(percent, digits)} %"


# --- metrics and budgets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    """A budgetable metric: the ``extra_info`` key it reads, its bound and unit, its parser and formatter."""

    name: str
    key: str
    bound: Literal["upper", "lower"]
    unit: str
    label: str  # how the failure line names it
    parse: Callable[[str], float]
    format: Callable[..., str]  # (value, like=budget text, digits=n) -> text


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("memory", "peak_mem_bytes", "upper", "bytes", "peak memory", parse_bytes, format_bytes),
        MetricSpec(
            "latency", "latency_ms_median", "upper", "ms", "median latency", parse_duration_ms, format_duration_ms
        ),
        MetricSpec("p99", "latency_ms_p99", "upper", "ms", "p99 latency", parse_duration_ms, format_duration_ms),
        MetricSpec("energy", "energy_j_per_image", "upper", "J", "energy per image", parse_energy_j, format_energy_j),
        MetricSpec("throughput", "throughput_ips", "lower", "ips", "throughput", parse_rate_ips, format_rate_ips),
        MetricSpec("top1", "top1", "lower", "%", "top-1 accuracy", parse_percent, format_percent),
        MetricSpec("top5", "top5", "lower", "%", "top-5 accuracy", parse_percent, format_percent),
    )
}

_SPEC_FORM = "METRIC=VALUE[,METRIC=VALUE...], e.g. memory=2.6GB,latency=50ms"


@dataclass(frozen=True)
class Budget:
    """One limit: ``limit`` in the metric's base unit (bytes, ms, J, ips, %), ``text`` as the user wrote it."""

    metric: str
    limit: float
    text: str

    @property
    def spec(self) -> MetricSpec:
        return METRICS[self.metric]


def metric_spec(metric: str) -> MetricSpec:
    """The spec of a metric name; an unknown name is a UsageError listing the accepted ones."""
    spec = METRICS.get(metric.strip()) if isinstance(metric, str) else None
    if spec is None:
        raise UsageError(f"unknown budget metric {metric!r}; accepted: {', '.join(METRICS)}")
    return spec


def parse_budget(metric: str, value: str | float) -> Budget:
    """``parse_budget("memory", "2.6GB")``; a bare number is accepted only for top1/top5 (percent)."""
    spec = metric_spec(metric)
    example = f"{spec.name}={_example(spec)}"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"bad {spec.name} budget {value!r}: expected text with its unit, e.g. {example}")
    if not isinstance(value, str) and spec.unit != "%":
        raise UsageError(f"bad {spec.name} budget {value!r}: a number needs its unit, e.g. {example}")
    text = str(value).strip()
    try:
        limit = spec.parse(text)
    except UsageError as exc:
        raise UsageError(f"{spec.name} budget: {exc}") from None
    return Budget(spec.name, float(limit), text)


def _example(spec: MetricSpec) -> str:
    return {"bytes": "2.6GB", "ms": "50ms", "J": "0.5J", "ips": "20ips", "%": "70"}[spec.unit]


def parse_budget_spec(spec: str) -> dict[str, Budget]:
    """``"memory=2.6GB,latency=50ms"`` (the ``--budget`` option and its ini key) -> budgets by metric."""
    budgets: dict[str, Budget] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"bad budget {item.strip()!r} in {spec!r}: expected {_SPEC_FORM}")
        budget = parse_budget(name, value)
        if budget.metric in budgets:
            raise UsageError(f"budget {budget.metric!r} given twice in {spec!r}: expected {_SPEC_FORM}")
        budgets[budget.metric] = budget
    return budgets


def merge_budgets(*layers: Mapping[str, Budget]) -> dict[str, Budget]:
    """One budget per metric; a later layer overrides an earlier one (device < ini < command line < marker)."""
    merged: dict[str, Budget] = {}
    for layer in layers:
        merged.update(layer)
    return merged


# --- verdicts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A budget checked against a cell's measurement.

    A budgeted metric that was not measured (``measured is None``, e.g. no energy source) does not
    pass: a budget is a claim the run has to show, and a silent pass would hide that nothing was
    checked. Its ``status`` is ``"not measured"`` (otherwise ``"within"`` or ``"over"``), so a report
    can tell "broke the budget" from "could not check it", and its line says so.
    """

    budget: Budget
    measured: float | None
    passed: bool

    @property
    def status(self) -> Literal["within", "over", "not measured"]:
        if self.measured is None:
            return "not measured"
        return "within" if self.passed else "over"

    def line(self, cell_id: str, device: str) -> str:
        """E.g. ``peak memory 2.81 GB > budget 2.6 GB (vgg16-base-b64-224x224 on jetson-nano)``."""
        spec = self.budget.spec
        where = f"({cell_id} on {device})"
        limit_text, measured_text = self._texts()
        if self.measured is None:
            return f"{spec.label} not measured, budget {limit_text} {where}"
        upper = spec.bound == "upper"
        relation = ("<=" if upper else ">=") if self.passed else (">" if upper else "<")
        return f"{spec.label} {measured_text} {relation} budget {limit_text} {where}"

    def _texts(self) -> tuple[str, str]:
        """The budget and the measured value in the budget's unit, with digits enough to tell them apart."""
        spec, like = self.budget.spec, self.budget.text
        for digits in range(3, 16):
            limit_text = spec.format(self.budget.limit, like=like, digits=digits)
            measured_text = "" if self.measured is None else spec.format(self.measured, like=like, digits=digits)
            if measured_text != limit_text or self.measured == self.budget.limit:
                break
        return limit_text, measured_text

    def as_dict(self) -> dict[str, object]:
        """For ``extra_info``: the budget as written, its limit and the measured value in base units."""
        return {
            "metric": self.budget.metric,
            "budget": self.budget.text,
            "limit": self.budget.limit,
            "measured": self.measured,
            "status": self.status,
            "passed": self.passed,
        }


def evaluate(budgets: Mapping[str, Budget], extra_info: Mapping[str, object]) -> list[Verdict]:
    """Check every budget against the measurement under its metric's ``extra_info`` key, in METRICS order."""
    verdicts = []
    for name in sorted(budgets, key=list(METRICS).index):
        budget = budgets[name]
        measured = _as_number(extra_info.get(budget.spec.key))
        if measured is None:
            verdicts.append(Verdict(budget, None, False))
        elif budget.spec.bound == "upper":
            verdicts.append(Verdict(budget, measured, measured <= budget.limit))
        else:
            verdicts.append(Verdict(budget, measured, measured >= budget.limit))
    return verdicts


def _as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)

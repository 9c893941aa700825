"""Resource budgets: parsing the user's text, checking a cell's measurements, the failure line.

A budget names a metric of the registry (``metrics.py``) and a limit with its unit: ``memory=2.6GB``
is 2.6 × 10⁹ bytes, ``memory=2.6GiB`` is 2.6 × 2³⁰, ``latency=50ms``, ``energy=0.5J``,
``throughput=20ips``; ``top1=70`` (or ``70%``) is a percentage. Memory, latency and energy are upper
bounds, throughput and accuracy lower bounds. Budgets come in layers, later ones winning: the
device's memory capacity, the ini key, ``--budget`` on the command line, the ``budget`` marker
(``merge_budgets``).

Anything that is not such text raises ``UsageError`` with one line naming the bad text and the
accepted form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import BUDGETS, DEVICE_INDEPENDENT, METRICS, PREDICTED, Metric, budget_metric

_SPEC_FORM = "METRIC=VALUE[,METRIC=VALUE...], e.g. memory=2.6GB,latency=50ms"


@dataclass(frozen=True)
class Budget:
    """One limit: ``limit`` in the metric's base unit (bytes, ms, J, ips, %), ``text`` as the user wrote it."""

    metric: str
    limit: float
    text: str

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]


def parse_budget(metric: str, value: str | float) -> Budget:
    """``parse_budget("memory", "2.6GB")``; a bare number is accepted only for top1/top5 (percent)."""
    spec = budget_metric(metric)
    example = f"{spec.name}={spec.example}"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"bad {spec.name} budget {value!r}: expected text with its unit, e.g. {example}")
    if not isinstance(value, str) and spec.unit != "%":
        raise UsageError(f"bad {spec.name} budget {value!r}: a number needs its unit, e.g. {example}")
    text = str(value).strip()
    try:
        assert spec.parse is not None  # budget_metric returns only metrics with a parser
        limit = spec.parse(text)
    except UsageError as exc:
        raise UsageError(f"{spec.name} budget: {exc}") from None
    return Budget(spec.name, float(limit), text)


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
    predicted: bool = False  # judged against an emulated target's predicted figure (--emulate)

    @property
    def metric(self) -> Metric:
        """The metric whose value was judged: the budget's, or its predicted twin on an emulated target."""
        spec = self.budget.spec
        return PREDICTED.get(spec.name, spec) if self.predicted else spec

    @property
    def status(self) -> Literal["within", "over", "not measured"]:
        if self.measured is None:
            return "not measured"
        return "within" if self.passed else "over"

    def text(self) -> str:
        """E.g. ``peak memory 2.81 GB > budget 2.6 GB``, or ``energy per image not measured, budget 0.5 J``;
        ``predicted peak memory ...`` where the value judged is an emulated target's."""
        spec = self.budget.spec
        label = self.metric.label if not self.predicted or self.metric is not spec else f"{spec.label} on the target"
        limit_text, measured_text = self._texts()
        if self.measured is None:
            return f"{label} {'not predicted' if self.predicted else 'not measured'}, budget {limit_text}"
        upper = spec.bound == "upper"
        relation = ("<=" if upper else ">=") if self.passed else (">" if upper else "<")
        return f"{label} {measured_text} {relation} budget {limit_text}"

    def line(self, cell_id: str, device: str) -> str:
        """The text and where: ``... > budget 2.6 GB (vgg16-base-b64-224x224 on jetson-nano)``."""
        return f"{self.text()} ({cell_id} on {device})"

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
            **({"predicted": True} if self.predicted else {}),
        }


class Measured(Protocol):
    """What a budget is checked against: anything that gives a metric's value (a ``Measurement``)."""

    def value(self, metric: Metric) -> float | None: ...


def evaluate(budgets: Mapping[str, Budget], measured: Measured, *, emulated: bool = False) -> list[Verdict]:
    """Check every budget against the measured value of its metric, in the registry's order. On an
    ``emulated`` target a budget judges the target's predicted figure (accuracy, the same on any
    device, its measured one; a metric nothing predicts, such as p99, is not predicted and fails)."""
    verdicts = []
    for metric in BUDGETS:
        budget = budgets.get(metric.name)
        if budget is None:
            continue
        predicted = emulated and metric.name not in DEVICE_INDEPENDENT
        judged = PREDICTED.get(metric.name) if predicted else metric
        value = None if judged is None else measured.value(judged)
        if value is None:
            verdicts.append(Verdict(budget, None, False, predicted))
        elif metric.bound == "upper":
            verdicts.append(Verdict(budget, value, value <= budget.limit, predicted))
        else:
            verdicts.append(Verdict(budget, value, value >= budget.limit, predicted))
    return verdicts

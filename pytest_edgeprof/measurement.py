"""The record every part passes around: a ``Cell`` (what is measured) and its ``Measurement``.

A Measurement is the one object the timer fills, the plugin saves into pytest-benchmark's
``extra_info``, the journal stores, and ``compare``, ``limits`` and ``report`` read back, as
torch.utils.benchmark's ``Measurement`` is what its ``Compare`` takes. It is made of typed parts
(``measurement_parts.py``: latency, memory, energy, cost, efficiency, pruning, accuracy, warm-up, ...)
whose fields name their saved keys (docs/saved-keys.md); ``to_extra_info()`` and ``from_extra_info()``
are its one serializer pair, a loop over those fields (``saved_keys.py``); a metric's key comes from the
registry in ``metrics.py``, and ``value(metric)`` reads it from the part that holds it.
"""

from __future__ import annotations

import hashlib
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from typing import Any

from pytest_edgeprof.axes import DEFAULT_PRECISION, DEFAULT_RUNTIME, PRECISIONS, RUNTIMES, id_tokens
from pytest_edgeprof.budgets import Budget, Verdict
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.latency_stats import EXACT_RANKS_UP_TO, median_interval, repeat_interval
from pytest_edgeprof.measurement_parts import (
    LATENCY_SCOPES,
    Accuracy,
    Cost,
    Deployment,
    Efficiency,
    Energy,
    Latency,
    Memory,
    Prediction,
    Pruning,
    WarmUp,
)
from pytest_edgeprof.metrics import METRICS, Metric, budget_metric, number
from pytest_edgeprof.metrics import metric as find_metric
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.saved_keys import keys_of, read_part, saved_fields, value_of, write_part
from pytest_edgeprof.shared_options import size_text

__all__ = [  # the parts and the statistics are imported from here too
    "Accuracy", "Cell", "CellKey", "Cost", "Deployment", "Efficiency", "Energy", "EXACT_RANKS_UP_TO", "LATENCY_SCOPES",
    "Latency", "Measurement", "Memory", "Prediction", "Pruning", "WarmUp", "median_interval", "repeat_interval",
]



@dataclass(frozen=True, order=True)
class Cell:
    """One point of the grid: model x variant x batch size x input shape x precision x runtime."""

    model: str
    variant: str  # "base", or "p50" for a model pruned to remove 50 % of its FLOPs
    batch_size: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    precision: str = DEFAULT_PRECISION
    runtime: str = DEFAULT_RUNTIME

    @property
    def id(self) -> str:
        """``resnet50-base-b8-224x224``; a precision or runtime other than the default joins the id
        (``resnet50-base-int8-onnxruntime-b8-224x224``), so ids and saved runs from before stay as they were."""
        return f"{self.configuration}-b{self.batch_size}-{size_text(self.input_shape)}"

    @property
    def configuration(self) -> str:
        """The model as deployed, without batch and shape: ``resnet50-p50-int8-onnxruntime``."""
        return f"{self.model}-{self.deployed_variant}"

    @property
    def runs_as_built(self) -> bool:
        """The default precision and runtime: the float32 module in eager PyTorch, nothing to deploy."""
        return (self.precision, self.runtime) == (DEFAULT_PRECISION, DEFAULT_RUNTIME)

    @property
    def deployed_variant(self) -> str:
        """The variant and, where not the default, its precision and runtime: ``p50``, ``base-int8-onnxruntime``."""
        return "-".join([self.variant, *id_tokens(self.precision, self.runtime)])

    @classmethod
    def from_extra_info(cls, info: Mapping[str, Any]) -> Cell:
        """The cell a saved ``extra_info`` describes; ``UsageError`` where it does not describe one."""
        try:
            shape = tuple(_count(v, "'input_shape'") for v in info["input_shape"])
            if len(shape) != 3:
                raise ValueError("'input_shape'")
            model, variant = info["model"], info["variant"]
            if not (isinstance(model, str) and isinstance(variant, str)):
                raise ValueError("'model'" if not isinstance(model, str) else "'variant'")
            precision = info.get("precision", DEFAULT_PRECISION)
            runtime = info.get("runtime", DEFAULT_RUNTIME)
            if precision not in PRECISIONS or runtime not in RUNTIMES:
                raise ValueError("'precision'" if precision not in PRECISIONS else "'runtime'")
            return cls(model, variant, _count(info["batch_size"], "'batch_size'"), shape,
                       precision, runtime)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"not an edgeprof cell (missing or bad {exc}): {dict(info)!r:.120}") from None


@dataclass(frozen=True)
class CellKey:
    """Everything that decides what a cell measures: two cells with equal keys measure the same thing.

    ``--resume`` replays a journalled cell only under an equal key. Budgets are not part of it: a
    replayed measurement is judged again against the budgets of the run that replays it.
    """

    test: str  # the test's node id: two tests never share a measurement
    cell: Cell
    device: str
    model: Mapping[str, str]  # which network (models/identity.py): a torchvision model and variant, or a user's module
    evaluation: str = ""  # the evaluation data and limit behind top1/top5; "" where accuracy is not measured
    conditions: Mapping[str, str] = field(default_factory=dict)  # torch threads, timer, timed rounds or not

    @property
    def text(self) -> str:
        """``resnet50-base-b8-224x224|3f2a9c...``: the cell id, readable, and a digest of all the rest."""
        whole = {"test": self.test, "cell": self.cell.id, "input_shape": list(self.cell.input_shape), "device": self.device,
                 "model": dict(self.model), "evaluation": self.evaluation, "conditions": dict(self.conditions)}
        digest = hashlib.sha256(json.dumps(whole, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.cell.id}|{digest}"


def _count(value: Any, key: str) -> int:
    """A positive whole number from JSON (an int, or a float such as 8.0) that torch could take (below 2**63);
    ValueError naming ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(key)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(key)
    if not 1 <= value < 2**63:
        raise ValueError(key)
    return int(value)


# --- the record ------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """Everything measured for one cell on one device. Parts stay None until something measures them;
    they are saved in the order of these fields."""

    cell: Cell
    device: str
    outcome: Outcome = Outcome.PASSED
    error: str = ""  # the first line of what ended the cell, if something did
    latency: Latency | None = None
    warmup: WarmUp | None = None
    memory: Memory | None = None
    energy: Energy | None = None
    cost: Cost | None = None
    efficiency: Efficiency | None = None
    deployment: Deployment | None = None
    pruning: Pruning | None = None
    accuracy: Accuracy | None = None
    prediction: Prediction | None = None  # an emulated target's figures, beside (never instead of) the measured ones
    budgets: dict[str, str] = field(default_factory=dict)  # metric -> the budget as written ("2.6GB")
    verdicts: tuple[Verdict, ...] = ()
    device_state: dict[str, Any] | None = None  # {"before": ..., "after": ...} the timed rounds (measure/device_state.py)
    other: dict[str, Any] = field(default_factory=dict)  # saved keys no part reads (a user's own extra_info)

    def value(self, metric: Metric | str) -> float | None:
        """A metric's value in its base unit (``value("memory")`` or ``value(MEMORY)``, bytes), read from the
        part that saves it; None where the cell has no such measurement."""
        key = (metric if isinstance(metric, Metric) else find_metric(metric)).key
        part = getattr(self, _part_saving(key))
        return None if part is None else number(value_of(part, key, self.cell.batch_size))

    def to_extra_info(self) -> dict[str, Any]:
        """The saved keys for pytest-benchmark's ``extra_info`` (docs/saved-keys.md)."""
        info: dict[str, Any] = {f.name: _as_saved(getattr(self.cell, f.name)) for f in fields(Cell)}
        info.update(device=self.device, outcome=self.outcome.value)
        if self.error:
            info["error"] = self.error
        for name in _parts():
            part = getattr(self, name)
            if part is not None:
                info.update(write_part(part, self.cell.batch_size))
        if self.device_state is not None:
            info["device_state"] = self.device_state
        if self.budgets or self.verdicts:
            info["budgets"] = dict(self.budgets)
            info["budget_verdicts"] = [verdict.as_dict() for verdict in self.verdicts]
        info.update({k: v for k, v in self.other.items() if k not in info})
        return info

    @classmethod
    def from_extra_info(cls, info: Mapping[str, Any]) -> Measurement:
        """The record a saved ``extra_info`` holds (any version's: missing parts stay None).
        ``UsageError`` where it is not an edgeprof cell or a metric's value is not a number."""
        cell = Cell.from_extra_info(info)
        for metric in METRICS.values():
            value = info.get(metric.key)
            if value is not None and number(value) is None:
                raise UsageError(f"{metric.key} is {value!r}, not a number")
        parts = {name: read_part(part_type, info) for name, part_type in _parts().items()}
        return cls(
            cell, str(info.get("device") or ""), Outcome.read(info.get("outcome")), str(info.get("error") or ""),
            **parts, budgets=_read_budgets(info), verdicts=_read_verdicts(info),
            device_state=state if isinstance(state := info.get("device_state"), dict) else None,
            other={k: v for k, v in info.items() if k not in _record_keys()},
        )


def _as_saved(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@cache
def _parts() -> dict[str, type]:
    """The record's parts by field name, in its order: the fields whose type has saved fields."""
    hints = typing.get_type_hints(Measurement)
    found: dict[str, type] = {}
    for f in fields(Measurement):
        for candidate in typing.get_args(hints[f.name]):  # Latency | None -> Latency, None
            if isinstance(candidate, type) and is_dataclass(candidate) and saved_fields(candidate):
                found[f.name] = candidate
    return found


@cache
def _part_saving(key: str) -> str:
    """The record's field holding the part that saves ``key``."""
    for name, part_type in _parts().items():
        if key in keys_of(part_type):
            return name
    raise KeyError(key)  # every metric's key is some part's (tests/test_measurement_parts.py)


@cache
def _record_keys() -> frozenset[str]:
    """Every key the record itself writes; the others of a saved extra_info are kept as ``other``."""
    own = {f.name for f in fields(Cell)} | {"device", "outcome", "error", "device_state", "budgets", "budget_verdicts"}
    return frozenset(own.union(*(keys_of(part_type) for part_type in _parts().values())))


# --- reading what is not a part: lenient, since runs of every version are read ---------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _read_budgets(info: Mapping[str, Any]) -> dict[str, str]:
    budgets = info.get("budgets")
    return {str(k): str(v) for k, v in budgets.items()} if isinstance(budgets, Mapping) else {}


def _read_verdicts(info: Mapping[str, Any]) -> tuple[Verdict, ...]:
    """The checked budgets; entries this version cannot read (an unknown metric) are left out."""
    saved = info.get("budget_verdicts")
    verdicts = []
    for entry in saved if isinstance(saved, list) else []:
        if not isinstance(entry, Mapping) or (limit := number(entry.get("limit"))) is None:
            continue
        try:
            metric = budget_metric(entry.get("metric"))
        except UsageError:
            continue
        text = _text(entry.get("budget")) or metric.format(limit)
        verdicts.append(Verdict(Budget(metric.name, limit, text), number(entry.get("measured")),
                                bool(entry.get("passed")), entry.get("predicted") is True))
    return tuple(verdicts)

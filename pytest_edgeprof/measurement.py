"""The record every part passes around: a ``Cell`` (what is measured) and its ``Measurement``.

A Measurement is the one object the timer fills, the plugin saves into pytest-benchmark's
``extra_info``, the journal stores, and ``compare``, ``limits`` and ``report`` read back, as
torch.utils.benchmark's ``Measurement`` is what its ``Compare`` takes. It is made of typed parts
(latency, memory, energy, cost, efficiency, pruning, accuracy, warm-up, verdicts); ``to_extra_info()`` and
``from_extra_info()`` are its one serializer pair, and the only place the saved keys (docs/saved-keys.md)
are written; a metric's key comes from the registry in ``metrics.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_edgeprof.axes import DEFAULT_PRECISION, DEFAULT_RUNTIME, PRECISIONS, RUNTIMES, id_tokens
from pytest_edgeprof.budgets import Budget, Verdict
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import (EFFICIENCY, ENERGY, FLOPS, FLOPS_PER_S, LATENCY, MAP, MEMORY, MIOU, P99,
                                     TARGET_ENERGY, TARGET_LATENCY, TARGET_MEMORY, TARGET_THROUGHPUT, THROUGHPUT, TOP1,
                                     TOP5, Metric, budget_metric, number)
from pytest_edgeprof.metrics import metric as find_metric
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.shared_options import size_text


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
    def from_extra_info(cls, info: Mapping[str, Any]) -> "Cell":
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
            return cls(model, variant, _count(info["batch_size"], "'batch_size'"), shape,  # type: ignore[arg-type]
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


# --- the parts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """One forward pass of one batch, per call, over the timed rounds; the summary in milliseconds.

    ``samples_s`` holds the rounds themselves where they are at hand (a cell just measured, a journal
    line); a saved run read back keeps only the summary (pytest-benchmark has the rounds' stats).
    """

    median_ms: float
    p90_ms: float
    p99_ms: float
    iqr_ms: float
    rounds: int
    timer: str  # "cuda-events" or "perf_counter"
    samples_s: tuple[float, ...] = field(default=(), repr=False)
    ci95_ms: tuple[float, float] | None = None  # the median's 95 % interval within this run; None under 6 rounds
    cov: float | None = None  # coefficient of variation: standard deviation / mean
    stable: bool | None = None  # the stopping rule reached its precision; None: rounds not run by it
    repeat95_ms: tuple[float, float] | None = None  # where another run's median is expected (95 %); None under 9 rounds

    @classmethod
    def of(cls, samples_s: Iterable[float], timer: str = "perf_counter", stable: bool | None = None) -> "Latency":
        samples = tuple(float(s) for s in samples_s)
        if not samples:
            raise ValueError("Latency needs at least one sample")

        cuts = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else None

        def percentile_ms(percent: int) -> float:
            return (cuts[percent - 1] if cuts else samples[0]) * 1e3

        interval, repeat = median_interval(samples), repeat_interval(samples)
        cov = statistics.stdev(samples) / statistics.fmean(samples) if len(samples) > 1 else None
        return cls(statistics.median(samples) * 1e3, percentile_ms(90), percentile_ms(99),
                   percentile_ms(75) - percentile_ms(25), len(samples), timer, samples,
                   (interval[0] * 1e3, interval[1] * 1e3) if interval else None, cov, stable,
                   (repeat[0] * 1e3, repeat[1] * 1e3) if repeat else None)

    def throughput_ips(self, batch_size: int) -> float:
        return batch_size / (self.median_ms / 1e3)


EXACT_RANKS_UP_TO = 1000  # beyond, summing the binomial in integers from 0 costs seconds


def median_interval(samples: Iterable[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """The median's distribution-free confidence interval: the order statistics x(l) and x(n+1-l) with
    the largest l for which P(Binomial(n, 1/2) < l) stays within (1 - confidence) / 2. It holds for
    any distribution of the samples (no normality assumed); None where n is too small for one (n < 6
    at 95 %)."""
    ordered = sorted(samples)
    n = len(ordered)
    rank = _lower_rank(n, (1 - confidence) / 2)
    if rank == 0:
        return None
    return ordered[rank - 1], ordered[n - rank]


# Student's t, 97.5th percentile, by degrees of freedom: a two-sided 95 % interval from a few block medians.
_T975 = {2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
REPEAT_BLOCKS = 10
ROUNDS_PER_BLOCK = 3


def repeat_interval(samples_in_order: Iterable[float]) -> tuple[float, float] | None:
    """Where the median of another run of the cell is expected, at 95 %: the run's median ± t(k-1) x the
    standard deviation of the medians of k time-ordered blocks of the rounds x sqrt(1 + 1/k) (k = 10, fewer
    where there are under 30 rounds, at least 3 rounds a block), never narrower than ``median_interval`` and
    never below 0.

    The order-statistics interval assumes independent rounds, so it narrows with every round even while
    the machine's speed drifts; the blocks' medians move with the drift, and their spread says how far
    another stretch of time, such as the next run, may read. None under 9 rounds (3 blocks)."""
    samples = list(samples_in_order)
    blocks = min(REPEAT_BLOCKS, len(samples) // ROUNDS_PER_BLOCK)
    if blocks < 3:
        return None
    size = len(samples) / blocks
    medians = [statistics.median(samples[round(i * size):round((i + 1) * size)]) for i in range(blocks)]
    median = statistics.median(samples)
    half = _T975[blocks - 1] * statistics.stdev(medians) * math.sqrt(1 + 1 / blocks)
    within = median_interval(samples) or (median, median)
    return max(0.0, min(median - half, within[0])), max(median + half, within[1])  # no latency is below 0


def _lower_rank(n: int, tail: float) -> int:
    """The largest l (1-based, 0 if none) with P(Binomial(n, 1/2) < l) <= ``tail``."""
    if n <= EXACT_RANKS_UP_TO:
        below, rank = 0.0, 0
        while rank < n // 2 and below + math.comb(n, rank) / 2**n <= tail:
            below += math.comb(n, rank) / 2**n
            rank += 1
        return rank
    # Start from the normal approximation and settle on the exact rank with the binomial's terms in
    # floats, summed from 12 standard deviations below the mean (what lies further down is < 1e-30).
    sd = math.sqrt(n) / 2
    first = max(0, math.floor(n / 2 - 12 * sd))
    log_all = math.lgamma(n + 1) - n * math.log(2)

    def below(rank: int) -> float:  # P(Binomial(n, 1/2) < rank)
        return sum(math.exp(log_all - math.lgamma(k + 1) - math.lgamma(n - k + 1)) for k in range(first, rank))

    rank = math.floor(n / 2 + 0.5 - statistics.NormalDist().inv_cdf(1 - tail) * sd)
    while below(rank + 1) <= tail:
        rank += 1
    while rank > 0 and below(rank) > tail:
        rank -= 1
    return rank


@dataclass(frozen=True)
class WarmUp:
    """How warm-up ended: after ``calls`` calls, with the timings settled or at its time limit."""

    calls: int
    settled: bool


@dataclass(frozen=True)
class Memory:
    """The most memory the cell held at once (weights + input + the forward pass's peak), in bytes."""

    peak_mem_bytes: int
    activation_peak_bytes: int | None  # the forward pass's own peak, from the allocator
    peak_rss_bytes: int | None  # the process's resident high-water during one call, above its baseline
    method: str  # how the activation peak was measured
    peak_reserved_bytes: int | None = None  # CUDA only: the caching allocator's reserved peak


@dataclass(frozen=True)
class Energy:
    """Energy over the timed rounds per image, and which source said so (docs/energy.md)."""

    j_per_image: float | None  # None where the source could not support a figure
    avg_power_w: float | None
    source: str  # nvml-counter, nvml-power, jetson-ina3221, rapl, codecarbon-estimate, none
    note: str = ""  # why there is no figure, or a caveat ("module input")
    co2_kg_per_image: float | None = None

    @property
    def is_estimate(self) -> bool:
        return "estimate" in self.source


# What one timed call of a task's model covers (saved as ``latency_scope`` beside ``task``).
LATENCY_SCOPES = {
    "classification": "forward",
    "detection": "forward incl. the model's transform (normalise, pad, batch) and post-processing (box decoding, NMS)",
    "segmentation": "forward incl. upsampling the masks to the input size",
}


@dataclass(frozen=True)
class Cost:
    """What the cell's batch and shape cost, and which network did the work; FLOPs = 2 x MACs."""

    flops: int | None
    macs: int | None
    params: int | None
    model_bytes: int | None  # parameters + buffers
    error: str = ""  # why FLOPs could not be counted
    task: str = ""  # classification, detection or segmentation; "" in runs saved before tasks
    network_input_shape: tuple[int, ...] | None = None  # what the network saw (a detection transform pads)
    flops_method: str = ""  # "meta", or "real-forward" where the forward reads values
    flops_note: str = ""  # what a real-forward count depends on


@dataclass(frozen=True)
class Deployment:
    """What ran the cell's model at its precision: the runtime's build, where it ran and how it was set up."""

    runtime_version: str  # "torch 2.14.1", "onnxruntime 1.32.0"
    provider: str  # the torch device, or ONNX Runtime's execution provider
    options: Mapping[str, Any] = field(default_factory=dict)  # session options, compile mode, threads
    compile_s: float | None = None  # torch.compile: the first call, compiling included (never in the latency)
    quantization: str = ""  # int8: the method and the calibration images


@dataclass(frozen=True)
class Efficiency:
    """How close the cell came to the device's physical limit: its FLOPs per second at the median latency
    over the achievable peak the session probed (``measure/peak.py``) at the run's precision."""

    flops_per_s: float
    efficiency: float | None  # flops_per_s / the peak; None where no peak was probed

    @classmethod
    def of(cls, cost: Cost | None, latency: Latency | None, peak_flops_per_s: float | None) -> "Efficiency | None":
        """None where the FLOPs were not counted or the rounds not timed."""
        if cost is None or cost.flops is None or latency is None or latency.median_ms <= 0:
            return None
        rate = cost.flops / (latency.median_ms / 1e3)
        return cls(rate, rate / peak_flops_per_s if peak_flops_per_s else None)


@dataclass(frozen=True)
class Pruning:
    """What a pruned variant really is, at the model's own input size."""

    target: float  # fraction of FLOPs asked to be removed
    achieved: float
    method: str
    params_before: int
    params_after: int
    reference_shape: tuple[int, ...]


@dataclass(frozen=True)
class Accuracy:
    """The task's own accuracy on the evaluation set named beside it: a classifier's percent correct,
    a detector's mAP, a segmenter's mIoU (scores from 0 to 1)."""

    top1: float | None
    top5: float | None
    eval_set: str
    map: float | None = None  # COCO mAP@[.5:.95]
    miou: float | None = None  # mean intersection over union of the classes present


@dataclass(frozen=True)
class Prediction:
    """An emulated target's figures for the cell (``--emulate``): predicted on the host, never measured."""

    target: str  # the device profile emulated: jetson-nano, host, ...
    precision: str  # the precision the figures are for
    peak_mem_bytes: int | None  # the host's measured peak at that precision + the target's runtime overhead
    latency_ms: float | None
    latency_method: str  # which model predicted the latency (measure/roofline.py)
    energy_j_per_image: float | None  # an estimate from the target's power envelope
    energy_note: str = ""

    def throughput_ips(self, batch_size: int) -> float | None:
        return None if not self.latency_ms else batch_size / (self.latency_ms / 1e3)


# --- the record ------------------------------------------------------------------------------------

# The keys each part writes (besides the metrics' keys, which come from the registry).
_IDENTITY_KEYS = ("model", "variant", "batch_size", "input_shape", "precision", "runtime", "device")
_PART_KEYS = frozenset({
    *_IDENTITY_KEYS, "outcome", "error", LATENCY.key, "latency_ms_p90", P99.key, "latency_ms_iqr", THROUGHPUT.key,
    "latency_samples", "latency_timer", "latency_ms_ci95", "latency_ms_repeat95", "latency_cov", "latency_stable", "warmup_calls", "warmup_settled", MEMORY.key, "activation_peak_bytes",
    "peak_rss_bytes", "peak_mem_method", "peak_reserved_bytes", ENERGY.key, "avg_power_w", "energy_source",
    "energy_note", "co2_kg_per_image", FLOPS.key, "macs", "params", "model_bytes", "flops_error", "task",
    "latency_scope", "network_input_shape", "flops_method", "flops_note", FLOPS_PER_S.key, EFFICIENCY.key, "prune_target",
    "prune_achieved", "prune_method", "prune_params_before", "prune_params_after", "prune_reference_shape",
    TOP1.key, TOP5.key, MAP.key, MIOU.key, "eval_set", "budgets", "budget_verdicts", "device_state", "target",
    "target_precision", TARGET_MEMORY.key, TARGET_LATENCY.key, TARGET_THROUGHPUT.key, "target_latency_method",
    TARGET_ENERGY.key, "target_energy_note", "runtime_version", "provider", "runtime_options", "compile_s",
    "quantization",
})


@dataclass
class Measurement:
    """Everything measured for one cell on one device. Parts stay None until something measures them."""

    cell: Cell
    device: str
    outcome: Outcome = Outcome.PASSED
    error: str = ""  # the first line of what ended the cell, if something did
    latency: Latency | None = None
    warmup: WarmUp | None = None
    memory: Memory | None = None
    energy: Energy | None = None
    cost: Cost | None = None
    deployment: Deployment | None = None
    efficiency: Efficiency | None = None
    pruning: Pruning | None = None
    accuracy: Accuracy | None = None
    prediction: Prediction | None = None  # an emulated target's figures, beside (never instead of) the measured ones
    budgets: dict[str, str] = field(default_factory=dict)  # metric -> the budget as written ("2.6GB")
    verdicts: tuple[Verdict, ...] = ()
    device_state: dict[str, Any] | None = None  # {"before": ..., "after": ...} the timed rounds (measure/device_state.py)
    other: dict[str, Any] = field(default_factory=dict)  # saved keys no part reads (a user's own extra_info)

    def value(self, metric: Metric | str) -> float | None:
        """A metric's value in its base unit (``value("memory")`` or ``value(MEMORY)``, bytes); None where
        the cell has no such measurement."""
        key = (metric if isinstance(metric, Metric) else find_metric(metric)).key
        return number(self.to_extra_info().get(key))

    def to_extra_info(self) -> dict[str, Any]:
        """The saved keys for pytest-benchmark's ``extra_info`` (docs/saved-keys.md)."""
        info: dict[str, Any] = {
            "model": self.cell.model, "variant": self.cell.variant, "batch_size": self.cell.batch_size,
            "input_shape": list(self.cell.input_shape), "precision": self.cell.precision, "runtime": self.cell.runtime,
            "device": self.device, "outcome": self.outcome.value,
        }
        if self.error:
            info["error"] = self.error
        parts = (self.latency, self.warmup, self.memory, self.energy, self.cost, self.efficiency, self.deployment,
                 self.pruning, self.accuracy, self.prediction)
        for part in parts:
            if part is not None:
                info.update(_WRITERS[type(part)](part, self.cell))
        if self.device_state is not None:
            info["device_state"] = self.device_state
        if self.budgets or self.verdicts:
            info["budgets"] = dict(self.budgets)
            info["budget_verdicts"] = [verdict.as_dict() for verdict in self.verdicts]
        info.update({k: v for k, v in self.other.items() if k not in info})
        return info

    @classmethod
    def from_extra_info(cls, info: Mapping[str, Any]) -> "Measurement":
        """The record a saved ``extra_info`` holds (any version's: missing parts stay None).
        ``UsageError`` where it is not an edgeprof cell or a metric's value is not a number."""
        cell = Cell.from_extra_info(info)
        for metric_key in (LATENCY.key, P99.key, THROUGHPUT.key, MEMORY.key, ENERGY.key, FLOPS.key, FLOPS_PER_S.key,
                           EFFICIENCY.key, TOP1.key, TOP5.key, MAP.key, MIOU.key, TARGET_MEMORY.key, TARGET_LATENCY.key,
                           TARGET_ENERGY.key):
            value = info.get(metric_key)
            if value is not None and number(value) is None:
                raise UsageError(f"{metric_key} is {value!r}, not a number")
        return cls(
            cell, str(info.get("device") or ""), Outcome.read(info.get("outcome")), str(info.get("error") or ""),
            latency=_read_latency(info), warmup=_read_warmup(info), memory=_read_memory(info),
            energy=_read_energy(info), cost=_read_cost(info), efficiency=_read_efficiency(info),
            deployment=_read_deployment(info), pruning=_read_pruning(info), accuracy=_read_accuracy(info),
            prediction=_read_prediction(info), budgets=_read_budgets(info), verdicts=_read_verdicts(info),
            device_state=state if isinstance(state := info.get("device_state"), dict) else None,
            other={k: v for k, v in info.items() if k not in _PART_KEYS},
        )


# --- writing: one function per part ----------------------------------------------------------------


def _write_latency(latency: Latency, cell: Cell) -> dict[str, Any]:
    return {
        LATENCY.key: latency.median_ms, "latency_ms_p90": latency.p90_ms, P99.key: latency.p99_ms,
        "latency_ms_iqr": latency.iqr_ms, THROUGHPUT.key: latency.throughput_ips(cell.batch_size),
        "latency_samples": latency.rounds, "latency_timer": latency.timer,
        **({"latency_ms_ci95": list(latency.ci95_ms)} if latency.ci95_ms is not None else {}),
        **({"latency_ms_repeat95": list(latency.repeat95_ms)} if latency.repeat95_ms is not None else {}),
        **({"latency_cov": latency.cov} if latency.cov is not None else {}),
        **({"latency_stable": latency.stable} if latency.stable is not None else {}),
    }


def _write_warmup(warmup: WarmUp, cell: Cell) -> dict[str, Any]:
    return {"warmup_calls": warmup.calls, "warmup_settled": warmup.settled}


def _write_memory(memory: Memory, cell: Cell) -> dict[str, Any]:
    info: dict[str, Any] = {
        MEMORY.key: memory.peak_mem_bytes, "peak_rss_bytes": memory.peak_rss_bytes, "peak_mem_method": memory.method,
        "activation_peak_bytes": memory.activation_peak_bytes,
    }
    if memory.peak_reserved_bytes is not None:
        info["peak_reserved_bytes"] = memory.peak_reserved_bytes
    return info


def _write_energy(energy: Energy, cell: Cell) -> dict[str, Any]:
    return {
        ENERGY.key: energy.j_per_image, "avg_power_w": energy.avg_power_w, "energy_source": energy.source,
        "energy_note": energy.note, "co2_kg_per_image": energy.co2_kg_per_image,
    }


def _write_cost(cost: Cost, cell: Cell) -> dict[str, Any]:
    info: dict[str, Any] = {FLOPS.key: cost.flops, "macs": cost.macs, "params": cost.params}
    if cost.error:
        info["flops_error"] = cost.error
    info["model_bytes"] = cost.model_bytes
    if cost.task:
        info.update(task=cost.task, latency_scope=LATENCY_SCOPES.get(cost.task, ""))
    if cost.network_input_shape is not None:
        info["network_input_shape"] = list(cost.network_input_shape)
    if cost.flops_method:
        info["flops_method"] = cost.flops_method
    if cost.flops_note:
        info["flops_note"] = cost.flops_note
    return info


def _write_deployment(deployment: Deployment, cell: Cell) -> dict[str, Any]:
    info: dict[str, Any] = {"runtime_version": deployment.runtime_version, "provider": deployment.provider,
                            "runtime_options": dict(deployment.options)}
    if deployment.compile_s is not None:
        info["compile_s"] = deployment.compile_s
    if deployment.quantization:
        info["quantization"] = deployment.quantization
    return info


def _write_efficiency(efficiency: Efficiency, cell: Cell) -> dict[str, Any]:
    info: dict[str, Any] = {FLOPS_PER_S.key: efficiency.flops_per_s}
    if efficiency.efficiency is not None:
        info[EFFICIENCY.key] = efficiency.efficiency
    return info


def _write_pruning(pruning: Pruning, cell: Cell) -> dict[str, Any]:
    return {
        "prune_target": pruning.target, "prune_achieved": pruning.achieved, "prune_method": pruning.method,
        "prune_params_before": pruning.params_before, "prune_params_after": pruning.params_after,
        "prune_reference_shape": list(pruning.reference_shape),
    }


def _write_accuracy(accuracy: Accuracy, cell: Cell) -> dict[str, Any]:
    scores = {TOP1.key: accuracy.top1, TOP5.key: accuracy.top5, MAP.key: accuracy.map, MIOU.key: accuracy.miou}
    return {**{key: value for key, value in scores.items() if value is not None}, "eval_set": accuracy.eval_set}


def _write_prediction(prediction: Prediction, cell: Cell) -> dict[str, Any]:
    return {
        "target": prediction.target, "target_precision": prediction.precision,
        TARGET_MEMORY.key: prediction.peak_mem_bytes, TARGET_LATENCY.key: prediction.latency_ms,
        TARGET_THROUGHPUT.key: prediction.throughput_ips(cell.batch_size),
        "target_latency_method": prediction.latency_method, TARGET_ENERGY.key: prediction.energy_j_per_image,
        "target_energy_note": prediction.energy_note,
    }


_WRITERS: dict[type, Any] = {
    Latency: _write_latency, WarmUp: _write_warmup, Memory: _write_memory, Energy: _write_energy, Cost: _write_cost,
    Efficiency: _write_efficiency, Deployment: _write_deployment, Pruning: _write_pruning, Accuracy: _write_accuracy,
    Prediction: _write_prediction,
}


# --- reading: lenient, since runs of every version are read ----------------------------------------


def _int(value: Any) -> int | None:
    found = number(value)
    return int(found) if found is not None else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _read_latency(info: Mapping[str, Any]) -> Latency | None:
    median = number(info.get(LATENCY.key))
    if median is None:
        return None
    p90, p99, iqr = (number(info.get(key)) for key in ("latency_ms_p90", P99.key, "latency_ms_iqr"))
    return Latency(median, median if p90 is None else p90, median if p99 is None else p99, iqr or 0.0,
                   _int(info.get("latency_samples")) or 0, _text(info.get("latency_timer")),
                   ci95_ms=_read_interval(info.get("latency_ms_ci95")), cov=number(info.get("latency_cov")),
                   stable=stable if isinstance(stable := info.get("latency_stable"), bool) else None,
                   repeat95_ms=_read_interval(info.get("latency_ms_repeat95")))


def _read_interval(saved: Any) -> tuple[float, float] | None:
    bounds = [number(v) for v in saved] if isinstance(saved, list) and len(saved) == 2 else []
    return (bounds[0], bounds[1]) if len(bounds) == 2 and None not in bounds else None  # type: ignore[return-value]


def _read_warmup(info: Mapping[str, Any]) -> WarmUp | None:
    calls = _int(info.get("warmup_calls"))
    return None if calls is None else WarmUp(calls, bool(info.get("warmup_settled")))


def _read_memory(info: Mapping[str, Any]) -> Memory | None:
    peak = _int(info.get(MEMORY.key))
    if peak is None:
        return None
    return Memory(peak, _int(info.get("activation_peak_bytes")), _int(info.get("peak_rss_bytes")),
                  _text(info.get("peak_mem_method")), _int(info.get("peak_reserved_bytes")))


def _read_energy(info: Mapping[str, Any]) -> Energy | None:
    if ENERGY.key not in info and "energy_source" not in info:
        return None
    return Energy(number(info.get(ENERGY.key)), number(info.get("avg_power_w")), _text(info.get("energy_source")),
                  _text(info.get("energy_note")), number(info.get("co2_kg_per_image")))


def _read_cost(info: Mapping[str, Any]) -> Cost | None:
    if not any(key in info for key in (FLOPS.key, "params", "model_bytes")):
        return None
    shape = info.get("network_input_shape")
    return Cost(_int(info.get(FLOPS.key)), _int(info.get("macs")), _int(info.get("params")),
                _int(info.get("model_bytes")), _text(info.get("flops_error")), _text(info.get("task")),
                tuple(int(d) for d in shape) if isinstance(shape, list) and all(_int(d) for d in shape) else None,
                _text(info.get("flops_method")), _text(info.get("flops_note")))


def _read_deployment(info: Mapping[str, Any]) -> Deployment | None:
    if "runtime_version" not in info:
        return None
    options = info.get("runtime_options")
    return Deployment(_text(info.get("runtime_version")), _text(info.get("provider")),
                      dict(options) if isinstance(options, Mapping) else {}, number(info.get("compile_s")),
                      _text(info.get("quantization")))


def _read_efficiency(info: Mapping[str, Any]) -> Efficiency | None:
    rate = number(info.get(FLOPS_PER_S.key))
    return None if rate is None else Efficiency(rate, number(info.get(EFFICIENCY.key)))


def _read_pruning(info: Mapping[str, Any]) -> Pruning | None:
    target = number(info.get("prune_target"))
    if target is None:
        return None
    shape = info.get("prune_reference_shape")
    return Pruning(target, number(info.get("prune_achieved")) or 0.0, _text(info.get("prune_method")),
                   _int(info.get("prune_params_before")) or 0, _int(info.get("prune_params_after")) or 0,
                   tuple(int(d) for d in shape) if isinstance(shape, list) else ())


def _read_accuracy(info: Mapping[str, Any]) -> Accuracy | None:
    top1, map_, miou = (number(info.get(metric.key)) for metric in (TOP1, MAP, MIOU))
    if top1 is None and map_ is None and miou is None:
        return None
    top5 = number(info.get(TOP5.key))
    return Accuracy(top1, top5 if top5 is not None or top1 is None else 0.0, _text(info.get("eval_set")), map_, miou)


def _read_prediction(info: Mapping[str, Any]) -> Prediction | None:
    target = info.get("target")
    if not isinstance(target, str) or not target:
        return None
    return Prediction(target, _text(info.get("target_precision")), _int(info.get(TARGET_MEMORY.key)),
                      number(info.get(TARGET_LATENCY.key)), _text(info.get("target_latency_method")),
                      number(info.get(TARGET_ENERGY.key)), _text(info.get("target_energy_note")))


def _read_budgets(info: Mapping[str, Any]) -> dict[str, str]:
    budgets = info.get("budgets")
    return {str(k): str(v) for k, v in budgets.items()} if isinstance(budgets, Mapping) else {}


def _read_verdicts(info: Mapping[str, Any]) -> tuple[Verdict, ...]:
    """The checked budgets; entries this version cannot read (an unknown metric) are left out."""
    saved = info.get("budget_verdicts")
    verdicts = []
    for entry in saved if isinstance(saved, list) else []:
        if not isinstance(entry, Mapping) or number(entry.get("limit")) is None:
            continue
        try:
            metric = budget_metric(entry.get("metric"))
        except UsageError:
            continue
        limit = number(entry["limit"])
        text = _text(entry.get("budget")) or metric.format(limit)
        verdicts.append(Verdict(Budget(metric.name, limit, text), number(entry.get("measured")),  # type: ignore[arg-type]
                                bool(entry.get("passed")), entry.get("predicted") is True))
    return tuple(verdicts)

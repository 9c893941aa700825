"""The typed parts of a cell's ``Measurement``: latency, warm-up, memory, energy, cost, efficiency,
deployment, pruning, accuracy and an emulated target's prediction.

Each saved field names its key in ``extra_info`` (docs/saved-keys.md) in its metadata
(``saved_keys.saved``); a metric's key comes from the registry in ``metrics.py``. ``saved_keys.py``
writes and reads every part by a loop over those fields, so a new saved figure is one field here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pytest_edgeprof.latency_stats import summarize, widen_for_rerun
from pytest_edgeprof.metrics import (
    EFFICIENCY,
    ENERGY,
    FLOPS,
    FLOPS_PER_S,
    LATENCY,
    MAP,
    MEMORY,
    MIOU,
    P99,
    TARGET_ENERGY,
    TARGET_LATENCY,
    TARGET_MEMORY,
    TARGET_THROUGHPUT,
    THROUGHPUT,
    TOP1,
    TOP5,
)
from pytest_edgeprof.saved_keys import Derived, saved


@dataclass(frozen=True)
class Latency:
    """One forward pass of one batch, per call, over the timed rounds; the summary in milliseconds.

    ``samples_s`` holds the rounds themselves where they are at hand (a cell just measured, a journal
    line); a saved run read back keeps only the summary (pytest-benchmark has the rounds' stats).
    """

    median_ms: float = field(metadata=saved(LATENCY.key, marks="value"))
    p90_ms: float = field(metadata=saved("latency_ms_p90"))  # read back as the median where not saved
    p99_ms: float = field(metadata=saved(P99.key))  # likewise
    iqr_ms: float = field(metadata=saved("latency_ms_iqr"))
    rounds: int = field(metadata=saved("latency_samples"))
    timer: str = field(metadata=saved("latency_timer"))  # "cuda-events" or "perf_counter"
    samples_s: tuple[float, ...] = field(default=(), repr=False)
    # the median's 95 % interval within this run; None under 6 rounds
    ci95_ms: tuple[float, float] | None = field(default=None, metadata=saved("latency_ms_ci95", omit="none"))
    # where another run's median is expected (95 %); None under 9 rounds
    repeat95_ms: tuple[float, float] | None = field(default=None, metadata=saved("latency_ms_repeat95", omit="none"))
    # coefficient of variation: standard deviation / mean
    cov: float | None = field(default=None, metadata=saved("latency_cov", omit="none"))
    # the stopping rule reached its precision; None: rounds not run by it
    stable: bool | None = field(default=None, metadata=saved("latency_stable", omit="none"))
    # how far a rerun's median lies at 95 %, relative, from this machine's earlier runs (features/rerun_history.py),
    # already in repeat95_ms; None: too few earlier runs, or none kept
    rerun95: float | None = field(default=None, metadata=saved("latency_rerun95", omit="none"))
    # how many pairs of consecutive earlier medians rerun95 came from
    rerun_pairs: int | None = field(default=None, metadata=saved("latency_rerun_pairs", omit="none"))

    DERIVED: ClassVar[tuple[Derived, ...]] = (
        Derived(THROUGHPUT.key, "iqr_ms", lambda latency, batch: latency.throughput_ips(batch), omit="none"),
    )

    @classmethod
    def of(cls, samples_s: Iterable[float], timer: str = "perf_counter", stable: bool | None = None) -> Latency:
        samples = tuple(float(s) for s in samples_s)
        summary = summarize(samples)

        def ms(interval: tuple[float, float] | None) -> tuple[float, float] | None:
            return (interval[0] * 1e3, interval[1] * 1e3) if interval else None

        return cls(summary.median * 1e3, summary.p90 * 1e3, summary.p99 * 1e3, summary.p75 * 1e3 - summary.p25 * 1e3,
                   len(samples), timer, samples, ms(summary.ci95), ms(summary.repeat95), summary.cov, stable)

    def with_rerun(self, spread: float, pairs: int) -> Latency:
        """This latency with its repeat interval at least ``spread`` wide (``latency_stats.widen_for_rerun``), from
        ``pairs`` pairs of earlier runs."""
        repeat = self.repeat95_ms or (self.median_ms, self.median_ms)
        return replace(self, rerun95=spread, rerun_pairs=pairs,
                       repeat95_ms=widen_for_rerun(repeat, self.median_ms, spread))

    @classmethod
    def settle_saved(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A run saved without p90 or p99 reads them as the median."""
        return {**values, **{name: values["median_ms"] for name in ("p90_ms", "p99_ms") if values[name] is None}}

    def throughput_ips(self, batch_size: int) -> float | None:
        """Images per second at the median latency; None where a (hand-edited) median of 0 gives no rate."""
        return batch_size / (self.median_ms / 1e3) if self.median_ms > 0 else None


@dataclass(frozen=True)
class WarmUp:
    """How warm-up ended: after ``calls`` calls, with the timings settled or at its time limit."""

    calls: int = field(metadata=saved("warmup_calls", marks="value"))
    settled: bool = field(metadata=saved("warmup_settled"))


@dataclass(frozen=True)
class Memory:
    """The most memory the cell held at once (weights + input + the forward pass's peak), in bytes."""

    peak_mem_bytes: int = field(metadata=saved(MEMORY.key, marks="value"))
    # the forward pass's own peak, from the allocator
    activation_peak_bytes: int | None = field(metadata=saved("activation_peak_bytes"))
    # the process's resident high-water during one call, above its baseline
    peak_rss_bytes: int | None = field(metadata=saved("peak_rss_bytes"))
    method: str = field(metadata=saved("peak_mem_method"))  # how the activation peak was measured
    # CUDA only: the caching allocator's reserved peak
    peak_reserved_bytes: int | None = field(default=None, metadata=saved("peak_reserved_bytes", omit="none"))


@dataclass(frozen=True)
class Energy:
    """Energy over the timed rounds per image, and which source said so (docs/energy.md)."""

    j_per_image: float | None = field(metadata=saved(ENERGY.key, marks="key"))  # None: the source supports no figure
    avg_power_w: float | None = field(metadata=saved("avg_power_w"))
    # nvml-counter, nvml-power, jetson-ina3221, rapl, codecarbon-estimate, none
    source: str = field(metadata=saved("energy_source", marks="key"))
    # why there is no figure, or a caveat ("module input")
    note: str = field(default="", metadata=saved("energy_note"))
    co2_kg_per_image: float | None = field(default=None, metadata=saved("co2_kg_per_image"))

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

    flops: int | None = field(metadata=saved(FLOPS.key, marks="key"))
    macs: int | None = field(metadata=saved("macs"))
    params: int | None = field(metadata=saved("params", marks="key"))
    model_bytes: int | None = field(metadata=saved("model_bytes", marks="key"))  # parameters + buffers
    error: str = field(default="", metadata=saved("flops_error", omit="empty"))  # why FLOPs could not be counted
    # classification, detection or segmentation; "" in runs saved before tasks
    task: str = field(default="", metadata=saved("task", omit="empty"))
    # what the network saw (a detection transform pads)
    network_input_shape: tuple[int, ...] | None = field(default=None, metadata=saved("network_input_shape", omit="none"))
    # "meta", or "real-forward" where the forward reads values
    flops_method: str = field(default="", metadata=saved("flops_method", omit="empty"))
    # what a real-forward count depends on
    flops_note: str = field(default="", metadata=saved("flops_note", omit="empty"))

    DERIVED: ClassVar[tuple[Derived, ...]] = (
        Derived("latency_scope", "task", lambda cost, _: LATENCY_SCOPES.get(cost.task, "") if cost.task else None,
                omit="none"),
    )


@dataclass(frozen=True)
class Efficiency:
    """How close the cell came to the device's physical limit: its FLOPs per second at the median latency
    over the achievable peak the session probed (``measure/peak.py``) at the run's precision."""

    flops_per_s: float = field(metadata=saved(FLOPS_PER_S.key, marks="value"))
    # flops_per_s / the peak; None where no peak was probed
    efficiency: float | None = field(metadata=saved(EFFICIENCY.key, omit="none"))

    @classmethod
    def of(cls, cost: Cost | None, latency: Latency | None, peak_flops_per_s: float | None) -> Efficiency | None:
        """None where the FLOPs were not counted or the rounds not timed."""
        if cost is None or cost.flops is None or latency is None or latency.median_ms <= 0:
            return None
        rate = cost.flops / (latency.median_ms / 1e3)
        return cls(rate, rate / peak_flops_per_s if peak_flops_per_s else None)


@dataclass(frozen=True)
class Deployment:
    """What ran the cell's model at its precision: the runtime's build, where it ran and how it was set up."""

    # "torch 2.14.1", "onnxruntime 1.32.0"
    runtime_version: str = field(metadata=saved("runtime_version", marks="key"))
    provider: str = field(metadata=saved("provider"))  # the torch device, or ONNX Runtime's execution provider
    # session options, compile mode, threads
    options: Mapping[str, Any] = field(default_factory=dict, metadata=saved("runtime_options"))
    # torch.compile: the first call, compiling included (never in the latency)
    compile_s: float | None = field(default=None, metadata=saved("compile_s", omit="none"))
    # int8: the method and the calibration images
    quantization: str = field(default="", metadata=saved("quantization", omit="empty"))


@dataclass(frozen=True)
class Pruning:
    """What a pruned variant really is, at the model's own input size."""

    target: float = field(metadata=saved("prune_target", marks="value"))  # fraction of FLOPs asked to be removed
    achieved: float = field(metadata=saved("prune_achieved"))
    method: str = field(metadata=saved("prune_method"))
    params_before: int = field(metadata=saved("prune_params_before"))
    params_after: int = field(metadata=saved("prune_params_after"))
    reference_shape: tuple[int, ...] = field(metadata=saved("prune_reference_shape"))


@dataclass(frozen=True)
class Accuracy:
    """The task's own accuracy on the evaluation set named beside it: a classifier's percent correct,
    a detector's mAP, a segmenter's mIoU (scores from 0 to 1)."""

    top1: float | None = field(metadata=saved(TOP1.key, omit="none", marks="value"))
    top5: float | None = field(metadata=saved(TOP5.key, omit="none"))  # read back as 0 where top1 is saved without it
    eval_set: str = field(metadata=saved("eval_set"))
    map: float | None = field(default=None, metadata=saved(MAP.key, omit="none", marks="value"))  # COCO mAP@[.5:.95]
    # mean intersection over union of the classes present
    miou: float | None = field(default=None, metadata=saved(MIOU.key, omit="none", marks="value"))

    @classmethod
    def settle_saved(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values["top5"] is None and values["top1"] is not None:
            return {**values, "top5": 0.0}
        return values


@dataclass(frozen=True)
class Prediction:
    """An emulated target's figures for the cell (``--emulate``): predicted on the host, never measured."""

    target: str = field(metadata=saved("target", marks="value"))  # the device profile emulated: jetson-nano, host, ...
    precision: str = field(metadata=saved("target_precision"))  # the precision the figures are for
    # the host's measured peak at that precision + the target's runtime overhead
    peak_mem_bytes: int | None = field(metadata=saved(TARGET_MEMORY.key))
    latency_ms: float | None = field(metadata=saved(TARGET_LATENCY.key))
    # which model predicted the latency (measure/roofline.py)
    latency_method: str = field(metadata=saved("target_latency_method"))
    # an estimate from the target's power envelope
    energy_j_per_image: float | None = field(metadata=saved(TARGET_ENERGY.key))
    energy_note: str = field(default="", metadata=saved("target_energy_note"))

    DERIVED: ClassVar[tuple[Derived, ...]] = (
        Derived(TARGET_THROUGHPUT.key, "latency_ms", lambda prediction, batch: prediction.throughput_ips(batch)),
    )

    def throughput_ips(self, batch_size: int) -> float | None:
        return None if not self.latency_ms else batch_size / (self.latency_ms / 1e3)

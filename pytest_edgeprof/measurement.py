"""The vocabulary every part passes around: a ``Cell`` (what is measured) and its ``Measurement``.

A Measurement is the one object the timer fills, the plugin saves into pytest-benchmark's
``extra_info``, the journal writes, and ``compare``/``report`` read back. Its ``extra_info()`` is
the only place the DESIGN.md key names are spelled out for writing.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from pytest_edgeprof.errors import UsageError


@dataclass(frozen=True, order=True)
class Cell:
    """One point of the grid: model x variant x batch size x input shape, on a device."""

    model: str
    variant: str  # "base", or "p50" for a model pruned to remove 50 % of its FLOPs
    batch_size: int
    input_shape: tuple[int, int, int]  # (C, H, W)

    @property
    def id(self) -> str:
        _, height, width = self.input_shape
        return f"{self.model}-{self.variant}-b{self.batch_size}-{height}x{width}"

    def identity(self, device: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "variant": self.variant,
            "batch_size": self.batch_size,
            "input_shape": list(self.input_shape),
            "device": device,
        }

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
            return cls(model, variant, _count(info["batch_size"], "'batch_size'"), shape)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"not an edgeprof cell (missing or bad {exc}): {dict(info)!r:.120}") from None


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


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latencies of one forward pass of one batch, in seconds, and their summary in ms."""

    samples_s: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples_s:
            raise ValueError("LatencyStats needs at least one sample")

    @classmethod
    def of(cls, samples_s: Iterable[float]) -> "LatencyStats":
        return cls(tuple(float(s) for s in samples_s))

    def _percentile_ms(self, percent: int) -> float:
        if len(self.samples_s) == 1:
            return self.samples_s[0] * 1e3
        cuts = statistics.quantiles(self.samples_s, n=100, method="inclusive")
        return cuts[percent - 1] * 1e3

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_s) * 1e3

    @property
    def p90_ms(self) -> float:
        return self._percentile_ms(90)

    @property
    def p99_ms(self) -> float:
        return self._percentile_ms(99)

    @property
    def iqr_ms(self) -> float:
        return self._percentile_ms(75) - self._percentile_ms(25)

    def throughput_ips(self, batch_size: int) -> float:
        return batch_size / (self.median_ms / 1e3)


@dataclass
class Measurement:
    """Everything measured for one cell. Optional parts stay None until something measures them."""

    cell: Cell
    device: str
    latency: LatencyStats | None = None
    timer: str = ""  # how the latency was taken: "cuda-events" or "perf_counter"
    outcome: str = "passed"  # "passed", "over-budget", "out-of-memory"
    error: str = ""  # the first line of the error that ended the cell, if one did
    extra: dict[str, Any] = field(default_factory=dict)  # memory, energy, FLOPs, budgets ... by DESIGN key

    def extra_info(self) -> dict[str, Any]:
        """The DESIGN.md keys for pytest-benchmark's ``extra_info``."""
        info = self.cell.identity(self.device)
        info["outcome"] = self.outcome
        if self.error:
            info["error"] = self.error
        if self.latency is not None:
            info.update(
                latency_ms_median=self.latency.median_ms,
                latency_ms_p90=self.latency.p90_ms,
                latency_ms_p99=self.latency.p99_ms,
                latency_ms_iqr=self.latency.iqr_ms,
                throughput_ips=self.latency.throughput_ips(self.cell.batch_size),
                latency_samples=len(self.latency.samples_s),
                latency_timer=self.timer,
            )
        info.update(self.extra)
        return info

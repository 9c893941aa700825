"""Where the cost of a network goes, layer by layer: FLOPs, parameters, activations and measured time.

The counts come from :func:`flops.count_cost` (per module, its own work, not its children's). The time
comes from forward hooks on every module: a pre-hook and a hook read a clock after waiting for the
device, so each module's inclusive time is known, and its own time is that minus its children's
(like the FLOPs, so the shares add up to 100 %). Runs follow a warm-up and the median of several runs
is kept. Modules that are not in the count (residual blocks, say) are listed when their own code —
the addition of a residual, a functional ReLU — took at least 1 % of the time.

The hooks' own clock readings add a little time to every module; the total without hooks is
measured beside it (``forward_ms``) so the difference can be seen.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.flops import check_input_shape, count_cost
from pytest_edgeprof.measure.timing import synchronizer, warm_up
from pytest_edgeprof.models.zoo import model_input
from pytest_edgeprof.shared_options import shape_text, size_text

SORT_KEYS = ("latency", "flops", "params", "activations")
_SHOWN_CONTAINER_SHARE = 0.01


@dataclass(frozen=True)
class LayerProfile:
    name: str  # qualified module name ("layer1.0.conv1"); "(model)" for the model's own forward code
    type: str
    output_shape: tuple[int, ...]
    flops: int
    params: int
    activation_bytes: int  # its output tensors' bytes, summed over its calls
    latency_ms: float  # median over the runs of its own time (children excluded)
    latency_share: float  # latency_ms / the sum over all modules, 0..1


@dataclass(frozen=True)
class LayersProfile:
    model: str
    input_shape: tuple[int, int, int]
    batch_size: int
    device: str
    runs: int
    forward_ms: float  # median forward of the whole model without hooks
    hooked_ms: float  # the sum of the layers' times, hooks included
    layers: tuple[LayerProfile, ...]

    def sorted(self, by: str = "latency") -> list[LayerProfile]:
        if by not in SORT_KEYS:
            raise UsageError(f"unknown sort key {by!r}; accepted: {', '.join(SORT_KEYS)}")
        key: Callable[[LayerProfile], float] = {
            "latency": lambda layer: layer.latency_ms,
            "flops": lambda layer: layer.flops,
            "params": lambda layer: layer.params,
            "activations": lambda layer: layer.activation_bytes,
        }[by]
        return sorted(self.layers, key=lambda layer: (-key(layer), layer.name))


def profile_layers(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    batch_size: int = 1,
    device: str = "cpu",
    runs: int = 10,
    name: str | None = None,
) -> LayersProfile:
    """Count and time every layer of ``model`` on ``device`` (it is moved there and put in eval mode)."""
    if runs < 1:
        raise UsageError(f"runs {runs!r} is not a positive integer")
    cost = count_cost(model, input_shape, batch_size, per_layer=True, real_forward=True)
    model = model.eval().to(device)
    x = model_input(model, batch_size, input_shape, device)
    sync = synchronizer(device)
    with torch.inference_mode():
        warm_up(lambda: model(x), device)
        forward_ms = _median_forward_ms(lambda: model(x), sync, runs)
        timer = _SelfTimer(model, sync)
        with timer.attached():
            for _ in range(runs):
                model(x)
                timer.end_run()
    own_ms = timer.median_ms()
    total = sum(own_ms.values()) or 1.0
    rows: list[LayerProfile] = []
    counted = set()
    for layer in cost.layers:
        counted.add(layer.name)
        ms = own_ms.get(layer.name, 0.0)
        rows.append(LayerProfile(layer.name or "(model)", layer.type, layer.output_shape, layer.flops,
                                 layer.params, layer.activation_bytes, ms, ms / total))
    modules = dict(model.named_modules())
    for module_name, ms in own_ms.items():
        if module_name not in counted and ms / total >= _SHOWN_CONTAINER_SHARE:
            rows.append(LayerProfile(module_name or "(model)", type(modules[module_name]).__name__,
                                     timer.shapes.get(module_name, ()), 0, 0, 0, ms, ms / total))
    return LayersProfile(
        name or type(model).__name__.lower(), check_input_shape(input_shape), batch_size, device, runs,  # as count_cost did
        forward_ms, sum(own_ms.values()), tuple(rows),
    )


def _median_forward_ms(call: Callable[[], object], sync: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


class _SelfTimer:
    """Forward hooks that time each module's own work (inclusive time minus its children's)."""

    def __init__(self, model: nn.Module, sync: Callable[[], None]) -> None:
        self._modules = dict(model.named_modules())
        self._names = {id(module): name for name, module in self._modules.items()}
        self._sync = sync
        self._stack: list[list[float]] = []  # [start, time spent in children]
        self._run: dict[str, float] = {}
        self._runs: list[dict[str, float]] = []
        self.shapes: dict[str, tuple[int, ...]] = {}

    @contextmanager
    def attached(self) -> Iterator[None]:
        handles = []
        for module in self._modules.values():
            handles.append(module.register_forward_pre_hook(self._enter))
            handles.append(module.register_forward_hook(self._leave))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _enter(self, module: nn.Module, args: object) -> None:
        self._sync()
        self._stack.append([time.perf_counter(), 0.0])

    def _leave(self, module: nn.Module, args: object, output: object) -> None:
        self._sync()
        start, children = self._stack.pop()
        inclusive = time.perf_counter() - start
        if self._stack:
            self._stack[-1][1] += inclusive
        name = self._names[id(module)]
        self._run[name] = self._run.get(name, 0.0) + inclusive - children
        if name not in self.shapes and isinstance(output, torch.Tensor):
            self.shapes[name] = tuple(output.shape)

    def end_run(self) -> None:
        self._runs.append(self._run)
        self._run = {}

    def median_ms(self) -> dict[str, float]:
        names = {name for run in self._runs for name in run}
        return {name: statistics.median(run.get(name, 0.0) for run in self._runs) * 1e3 for name in names}


# --- output ----------------------------------------------------------------------------------------


def _count(n: float) -> str:
    for unit, factor in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{n:.0f}"


def render(profile: LayersProfile, top: int | None = None, by: str = "latency") -> str:
    rows = profile.sorted(by)[:top] if top else profile.sorted(by)
    shape = shape_text(profile.input_shape)
    lines = [
        f"{profile.model}, batch {profile.batch_size}, input {shape}, on {profile.device}: "
        f"forward {profile.forward_ms:.3g} ms (median of {profile.runs}; {profile.hooked_ms:.3g} ms with the timing hooks)",
        f"sorted by {by}" + (f", top {len(rows)} of {len(profile.layers)}" if top and top < len(profile.layers) else ""),
    ]
    table = [("layer", "type", "output", "FLOPs", "params", "act. bytes", "time", "share")]
    for layer in rows:
        table.append((
            layer.name, layer.type, shape_text(layer.output_shape), _count(layer.flops),
            _count(layer.params), _count(layer.activation_bytes) + "B", f"{layer.latency_ms:.3f} ms",
            f"{layer.latency_share * 100:.1f} %",
        ))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        left = "  ".join(f"{row[i]:<{widths[i]}}" for i in range(3))
        right = "  ".join(f"{row[i]:>{widths[i]}}" for i in range(3, len(row)))
        lines.append(f"{left}  {right}")
    return "\n".join(lines)


def to_json(profile: LayersProfile, top: int | None = None, by: str = "latency",
            extra: dict[str, Any] | None = None) -> str:
    """The profile as JSON; ``extra`` keys (the command's timings) come before the layers."""
    rows = profile.sorted(by)[:top] if top else profile.sorted(by)
    head = {k: v for k, v in asdict(profile).items() if k != "layers"}
    return json.dumps({**head, "sorted_by": by, **(extra or {}), "layers": [asdict(layer) for layer in rows]}, indent=2)


def plot(profile: LayersProfile, path: str, top: int = 20, by: str = "latency") -> None:
    """A horizontal bar chart of the top layers: share of time and share of FLOPs side by side."""
    from matplotlib.figure import Figure

    rows = profile.sorted(by)[:top]
    total_flops = sum(layer.flops for layer in profile.layers) or 1
    labels = [f"{layer.name} ({layer.type})" for layer in rows]
    height = 0.4
    figure = Figure(figsize=(9, 1.2 + 0.32 * len(rows)), dpi=110, layout="constrained")
    ax = figure.subplots()
    ys = range(len(rows))
    ax.barh([y - height / 2 for y in ys], [layer.latency_share * 100 for layer in rows], height, label="time")
    ax.barh([y + height / 2 for y in ys], [layer.flops / total_flops * 100 for layer in rows], height, label="FLOPs")
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of the whole model (%)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    shape = size_text(profile.input_shape)
    ax.set_title(f"{profile.model}: top {len(rows)} layers by {by} (batch {profile.batch_size}, {shape}, {profile.device})", fontsize=10)
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # like the report's and the journal's folders
    figure.savefig(path)

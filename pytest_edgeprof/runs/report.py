"""Pictures of a saved run: PNG plots per model and an ``index.html`` that shows them.

Per model: latency and throughput against batch size (one line per input shape and variant), peak
memory against batch size with the memory budget as a line and out-of-memory cells marked, energy
per image (labelled with its source, so an estimate reads as one), and accuracy against GFLOPs per
image for the variants when the run has top-1. For a run made with ``--emulate`` (``host`` above all),
the predicted latency of every cell against its measured one. Figures are drawn with matplotlib's object API on the
Agg canvas (no pyplot, no display, no global backend switch).
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import ENERGY, FLOPS, LATENCY, MEMORY, TARGET_LATENCY, THROUGHPUT, TOP1, Metric
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.runs import limits
from pytest_edgeprof.runs.saved import SavedCell, SavedRun
from pytest_edgeprof.shared_options import size_text

_BUDGET_COLOR = "#7f8c8d"


@dataclass(frozen=True)
class Series:
    """The cells of one model, variant and input shape, by batch size: one line on a plot."""

    label: str
    cells: tuple[SavedCell, ...]
    color: str  # one colour per input shape
    linestyle: str  # one style per variant: solid for the first (base), dashed, dotted ... for the others

    def points(self, metric: Metric, scale: float = 1.0) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for saved in self.cells:
            value = saved.value(metric)
            if value is not None:
                xs.append(saved.cell.batch_size)
                ys.append(value * scale)
        return xs, ys


@dataclass
class Section:
    """One model's part of the index: its plots, and what the run had no numbers for."""

    model: str
    pngs: list[Path]
    missing: list[str]


def write_report(run: SavedRun, out: Path) -> list[Path]:
    """Write the PNGs and ``index.html`` under ``out``; return the files written, index last."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sections: list[Section] = []
    for model, cells in _by_model(run.cells.values()).items():
        series = _series(cells)
        section = Section(model, [_save(_latency_figure(model, series, run), out / f"{_file_stem(model)}_latency.png")], [])
        plots = (
            ("memory", "peak memory", lambda c: c.value(MEMORY) is not None or c.outcome is Outcome.OUT_OF_MEMORY, _memory_figure),
            ("energy", "energy per image", lambda c: c.value(ENERGY) is not None, _energy_figure),
            ("accuracy", "top-1 with FLOPs", lambda c: c.value(TOP1) is not None and c.value(FLOPS) is not None, None),
        )
        for name, what, present, draw in plots:
            if not any(present(c) for c in cells):
                section.missing.append(what)
                continue
            figure = draw(model, series, run) if draw else _accuracy_figure(model, cells, run)
            section.pngs.append(_save(figure, out / f"{_file_stem(model)}_{name}.png"))
        sections.append(section)
        written.extend(section.pngs)
    predicted = [c for c in run.cells.values() if c.value(LATENCY) is not None and c.value(TARGET_LATENCY) is not None]
    if predicted:
        png = _save(_prediction_figure(predicted, run), out / "predicted_vs_measured.png")
        sections.append(Section("predicted against measured", [png], []))
        written.append(png)
    index = out / "index.html"
    index.write_text(_index_html(run, sections), encoding="utf8")
    written.append(index)
    return written


def _file_stem(model: str) -> str:
    """The model name as a file name inside the report folder: a saved run is data, and a name such as
    '../x' from a foreign or edited file must not choose where the report writes."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", model)


def _by_model(cells: Iterable[SavedCell]) -> dict[str, list[SavedCell]]:
    models: dict[str, list[SavedCell]] = {}
    for saved in sorted(cells, key=lambda s: s.cell):
        models.setdefault(saved.cell.model, []).append(saved)
    return models


_LINESTYLES = ("-", "--", ":", "-.")


def _series(cells: Sequence[SavedCell]) -> list[Series]:
    """One series per input shape and variant (with its precision and runtime), largest shape first; colour by
    shape, style by variant."""
    shapes = sorted({c.cell.input_shape for c in cells}, key=lambda s: (-s[1] * s[2], s))
    variants = sorted({c.cell.deployed_variant for c in cells}, key=lambda v: (v != "base", v))
    series = []
    for i, shape in enumerate(shapes):
        for j, variant in enumerate(variants):
            members = sorted((c for c in cells if c.cell.input_shape == shape and c.cell.deployed_variant == variant),
                             key=lambda c: c.cell.batch_size)
            if members:
                label = size_text(shape) + (f" {variant}" if len(variants) > 1 else "")
                series.append(Series(label, tuple(members), f"C{i % 10}", _LINESTYLES[j % len(_LINESTYLES)]))
    return series


# --- figures ---------------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 4.2, columns: int = 1) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, list(axes)


def _batch_axis(ax: Axes, batches: Sequence[int]) -> None:
    """Batch sizes on a log2 axis with a tick at each size the run has."""
    ax.set_xscale("log", base=2)
    ticks = sorted(set(batches))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    if len(ticks) == 1:
        ax.set_xlim(ticks[0] / 1.5, ticks[0] * 1.5)
    ax.set_xlabel("batch size")
    ax.grid(True, which="major", alpha=0.3)


def _plot_series(ax: Axes, series: Sequence[Series], metric: Metric, scale: float = 1.0) -> list[int]:
    """One line per series; its out-of-memory cells as crosses of its colour along the top of the plot."""
    batches: list[int] = []
    stacked = Counter[int]()
    for s in series:
        xs, ys = s.points(metric, scale)
        ax.plot(xs, ys, marker="o", markersize=4, label=s.label, color=s.color, linestyle=s.linestyle)
        batches.extend(c.cell.batch_size for c in s.cells)
        for saved in s.cells:
            if saved.outcome is Outcome.OUT_OF_MEMORY and saved.value(metric) is None:
                batch = saved.cell.batch_size
                y = 0.95 - 0.06 * stacked[batch]  # several series out of memory at one batch: stack them
                stacked[batch] += 1
                ax.plot([batch], [y], linestyle="none", marker="x", markersize=9, markeredgewidth=2,
                        color=s.color, transform=ax.get_xaxis_transform())
    if stacked:
        ax.set_ymargin(0.2)  # room above the lines for the crosses
        ax.plot([], [], linestyle="none", marker="x", markersize=9, markeredgewidth=2, color="black",
                label="out of memory")
    return batches


def _value_axis(ax: Axes, spread: float = 30.0) -> None:
    """From zero on a linear scale; on a log scale where the values span more than ``spread``
    times (one slow outlier would otherwise flatten every other line)."""
    values = [y for line in ax.get_lines() if line.get_transform() == ax.transData
              for y in np.asarray(line.get_ydata()).tolist() if y > 0]
    if values and max(values) / min(values) > spread:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)


def _title(figure: Figure, text: str, run: SavedRun) -> None:
    figure.suptitle(f"{text}  ·  {run.device or 'unknown device'}", fontsize=11)


def _latency_figure(model: str, series: Sequence[Series], run: SavedRun) -> Figure:
    figure, (latency_ax, throughput_ax) = _figure(10.0, 4.2, columns=2)
    _title(figure, f"{model}: latency and throughput", run)
    batches = _plot_series(latency_ax, series, LATENCY)
    latency_ax.set_ylabel(f"{LATENCY.label} of one batch (ms)")
    _value_axis(latency_ax)
    _plot_series(throughput_ax, series, THROUGHPUT)
    throughput_ax.set_ylabel(f"{THROUGHPUT.label} (images/s)")
    _value_axis(throughput_ax)
    for ax in (latency_ax, throughput_ax):
        _batch_axis(ax, batches)
    _legend(latency_ax, title="input")
    return figure


PREDICTION_BAND = 0.25  # the band the check's bar is set at: predicted within ±25 % of measured


def _prediction_figure(cells: Sequence[SavedCell], run: SavedRun) -> Figure:
    """Predicted against measured latency, one point per cell and a colour per model, on log axes with
    the line where they are equal and the ±25 % band around it."""
    figure, (ax,) = _figure(7.0, 6.0)
    targets = sorted({c.measurement.prediction.target for c in cells if c.measurement.prediction})
    _title(figure, f"{TARGET_LATENCY.label} for {', '.join(targets)} against {LATENCY.label}", run)
    for i, (model, mine) in enumerate(_by_model(cells).items()):
        points = [(x, y) for c in mine if (x := c.value(LATENCY)) is not None and (y := c.value(TARGET_LATENCY)) is not None]
        ax.scatter([x for x, _ in points], [y for _, y in points], s=18, color=f"C{i % 10}", label=model)
    values = [v for c in cells for v in (c.value(LATENCY), c.value(TARGET_LATENCY)) if v]
    low, high = min(values) / 1.5, max(values) * 1.5
    ax.plot([low, high], [low, high], color=_BUDGET_COLOR, linewidth=1, label="equal")
    ax.fill_between([low, high], [low * (1 - PREDICTION_BAND), high * (1 - PREDICTION_BAND)],
                    [low * (1 + PREDICTION_BAND), high * (1 + PREDICTION_BAND)], color=_BUDGET_COLOR, alpha=0.15,
                    label=f"±{PREDICTION_BAND:.0%}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel(f"{LATENCY.label}, measured (ms)")
    ax.set_ylabel(f"{TARGET_LATENCY.label} (ms)")
    _legend(ax, title="model")
    return figure


OFF_SCALE = 4  # a memory budget more than this many times the largest peak is named, not drawn


def _memory_figure(model: str, series: Sequence[Series], run: SavedRun) -> Figure:
    figure, (ax,) = _figure()
    _title(figure, f"{model}: peak memory", run)
    batches = _plot_series(ax, series, MEMORY, 1e-6)
    ax.set_ylabel(f"{MEMORY.label} (MB)")
    budget = _memory_budget(s for ser in series for s in ser.cells)
    peaks = [peak for ser in series for c in ser.cells if (peak := c.value(MEMORY))]
    if budget is not None:
        limit_bytes, text = budget
        if peaks and limit_bytes > OFF_SCALE * max(peaks):  # a far budget (the device's RAM) would flatten the lines
            ax.text(0.99, 0.03, f"budget {text}: {limit_bytes / max(peaks):.0f}x the largest peak, off the scale",
                    transform=ax.transAxes, ha="right", va="bottom", color=_BUDGET_COLOR, fontsize=8)
        else:
            ax.axhline(limit_bytes / 1e6, color=_BUDGET_COLOR, linestyle="--", linewidth=1.2, label=f"budget {text}")
    ax.set_ylim(bottom=0)
    _batch_axis(ax, batches)
    _legend(ax, title="input")
    return figure


def _energy_figure(model: str, series: Sequence[Series], run: SavedRun) -> Figure:
    figure, (ax,) = _figure()
    energies = [c.measurement.energy for s in series for c in s.cells if c.measurement.energy is not None]
    sources = sorted({energy.source for energy in energies if energy.source})
    source = f", source: {', '.join(sources)}" if sources else ""
    estimate = any(energy.is_estimate for energy in energies)
    _title(figure, f"{model}: {ENERGY.label}{' — ESTIMATED' if estimate else ''}", run)
    batches = _plot_series(ax, series, ENERGY, 1e3)
    ax.set_ylabel(f"{ENERGY.label} (mJ){source}")
    _value_axis(ax)
    _batch_axis(ax, batches)
    _legend(ax, title="input")
    return figure


def _accuracy_figure(model: str, cells: Sequence[SavedCell], run: SavedRun) -> Figure:
    """Top-1 against FLOPs per image (GFLOPs, or MFLOPs for small models): one point per variant and input shape (accuracy does not
    depend on the batch size; the first batch with both numbers is taken)."""
    figure, (ax,) = _figure()
    _title(figure, f"{model}: accuracy against compute", run)
    points: dict[tuple[tuple[int, int, int], str], tuple[float, float]] = {}
    for saved in sorted(cells, key=lambda s: s.cell):
        top1, flops = saved.value(TOP1), saved.value(FLOPS)
        key = (saved.cell.input_shape, saved.cell.deployed_variant)
        if top1 is not None and flops is not None and key not in points:
            points[key] = (flops / saved.cell.batch_size, top1)
    unit, factor = ("GFLOPs", 1e9) if max(x for x, _ in points.values()) >= 1e8 else ("MFLOPs", 1e6)
    for shape in sorted({k[0] for k in points}, key=lambda s: -s[1] * s[2]):
        mine = sorted(((x / factor, y), variant) for (sh, variant), (x, y) in points.items() if sh == shape)
        ax.plot([xy[0] for xy, _ in mine], [xy[1] for xy, _ in mine], marker="o", label=size_text(shape))
        for (x, y), variant in mine:
            ax.annotate(variant, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    eval_sets = sorted({c.measurement.accuracy.eval_set for c in cells if c.measurement.accuracy and c.measurement.accuracy.eval_set})
    ax.set_xlabel(f"{unit} per image")
    ax.set_ylabel(f"{TOP1.label} (%)" + (f" on {', '.join(eval_sets)}" if eval_sets else ""))
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.15, y=0.15)
    _legend(ax, title="input")
    return figure


def _legend(ax: Axes, title: str) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=title, fontsize=8, title_fontsize=8, loc="best")


def _memory_budget(cells: Iterable[SavedCell]) -> tuple[float, str] | None:
    """The memory budget's limit in bytes and its text, from the first cell that checked one."""
    for saved in cells:
        for verdict in saved.measurement.verdicts:
            if verdict.budget.spec is MEMORY:
                return verdict.budget.limit, verdict.budget.text
    return None


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path)
    return path


# --- index -----------------------------------------------------------------------------------------


def _limits_text(run: SavedRun) -> str:
    """``edgeprof limits`` of the run; where no cell has a throughput to rank by (none was timed), why not."""
    try:
        return limits.render(run)
    except UsageError as exc:
        return f"no limits: {exc}"


def _index_html(run: SavedRun, sections: Sequence[Section]) -> str:
    e: Callable[[object], str] = lambda v: html.escape(str(v))  # noqa: E731
    machine = run.machine_info.get("edgeprof")
    if not isinstance(machine, dict):
        machine = {}
    about = [("device", run.device), ("hardware", machine.get("device_description")), ("date", run.when),
             ("torch", machine.get("torch_version")), ("run", run.path), ("cells", len(run.cells))]
    rows = "\n".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in about if v not in (None, ""))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>edgeprof report: {e(run.device)} {e(run.when)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}th{text-align:left;padding-right:1em}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>",
        f"<h1>edgeprof report: {e(run.device)}</h1>",
        f"<table>{rows}</table>",
        "<h2>Limits</h2>",
        f"<pre>{e(_limits_text(run))}</pre>",
    ]
    for section in sections:
        parts.append(f'<h2 id="{e(section.model)}">{e(section.model)}</h2>')
        if section.missing:
            parts.append(f"<p>Not in this run, so not plotted: {e(', '.join(section.missing))}.</p>")
        parts.extend(f'<img src="{e(p.name)}" alt="{e(p.stem)}">' for p in section.pngs)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


"""The answer at a glance: a run's cells as one table that fits the terminal, then the recommendation.

Printed at the end of every pytest run (the plugin's terminal summary): per cell its median latency
(with its 95 % interval where the rounds give one: where another run's median is expected, else the
run's own), p99, throughput, peak memory, energy per image
(its source abbreviated, an estimate marked as one), FLOPs, top-1 where measured, the share of the
device's peak FLOP/s it reached (efficiency), and the verdict;
then the cell ``edgeprof limits`` recommends and, per configuration and shape, the first batch that
did not fit and why. A run made with ``--emulate`` adds the target's predicted latency and memory
(headed "pred.") beside the measured ones, and its recommendation and limits answer for the target. Columns are the registry's metrics; where the table is wider than the terminal
the lowest-priority columns are dropped first. ``quiet`` keeps only the recommendation.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import (
    EFFICIENCY,
    ENERGY,
    FLOPS,
    LATENCY,
    MAP,
    MEMORY,
    MIOU,
    P99,
    TARGET_LATENCY,
    TARGET_MEMORY,
    THROUGHPUT,
    TOP1,
    Metric,
    format_percent,
)
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.runs import limits
from pytest_edgeprof.runs.saved import SavedCell, SavedRun

NO_BREAK = "\u00a0"  # a space textwrap does not break at: a value stays beside its unit

# How an energy figure says where it came from, in a few letters.
SOURCE_ABBREVIATIONS = {"nvml-counter": "nvml", "nvml-power": "nvml~", "jetson-ina3221": "ina", "rapl": "rapl",
                        "codecarbon-estimate": "est."}


@dataclass(frozen=True)
class Column:
    name: str  # as --edgeprof-columns names it
    header: str
    text: Callable[[SavedCell], str]
    priority: float  # columns are dropped from the highest number down until the table fits


def _metric_text(metric: Metric) -> Callable[[SavedCell], str]:
    def text(cell: SavedCell) -> str:
        value = cell.value(metric)
        return "-" if value is None else metric.format(value)

    return text


def _latency_text(cell: SavedCell) -> str:
    latency = cell.measurement.latency
    if latency is None:
        return "-"
    text = LATENCY.format(latency.median_ms)
    interval = latency.repeat95_ms or latency.ci95_ms  # where another run would read, where the rounds tell
    if interval is not None:
        low, high = interval
        text += f" ±{max(latency.median_ms - low, high - latency.median_ms) / latency.median_ms * 100:.1f}%"
    return text


def _energy_text(cell: SavedCell) -> str:
    energy = cell.measurement.energy
    if energy is None or energy.j_per_image is None:
        return "-"
    return f"{ENERGY.format(energy.j_per_image)} {SOURCE_ABBREVIATIONS.get(energy.source, energy.source)}"


def _top1_text(cell: SavedCell) -> str:
    top1 = cell.value(TOP1)
    return "-" if top1 is None else format_percent(top1)


def verdict_text(cell: SavedCell) -> str:
    """``passed``, or the outcome and what broke: ``over budget: memory``, ``out of memory``."""
    outcome = cell.outcome
    if outcome is Outcome.OVER_BUDGET:
        broken = [v.budget.metric for v in cell.measurement.verdicts if not v.passed]
        return "over budget: " + ", ".join(broken)
    return outcome.words


COLUMNS: dict[str, Column] = {c.name: c for c in (
    Column("latency", "median latency", _latency_text, 1),
    Column("target_latency", "pred. latency", _metric_text(TARGET_LATENCY), 1.5),
    Column("throughput", THROUGHPUT.label, _metric_text(THROUGHPUT), 2),
    Column("memory", MEMORY.label, _metric_text(MEMORY), 3),
    Column("target_memory", "pred. memory", _metric_text(TARGET_MEMORY), 3.5),
    Column("energy", "energy/image", _energy_text, 4),
    Column("flops", FLOPS.label, _metric_text(FLOPS), 6),
    Column("p99", "p99", _metric_text(P99), 7),
    Column("top1", "top-1", _top1_text, 5),
    Column("map", "mAP", _metric_text(MAP), 5),
    Column("miou", "mIoU", _metric_text(MIOU), 5),
    Column("efficiency", "efficiency", _metric_text(EFFICIENCY), 8),
)}
DEFAULT_COLUMNS = ("latency", "p99", "target_latency", "throughput", "memory", "target_memory", "energy", "flops", "top1",
                   "map", "miou", "efficiency")


def parse_columns(text: str) -> tuple[str, ...]:
    """``--edgeprof-columns latency,memory``: the summary's metric columns, in that order."""
    names = tuple(dict.fromkeys(item.strip() for item in text.split(",")))
    unknown = [name for name in names if name not in COLUMNS]
    if not text.strip() or "" in names or unknown:
        bad = ", ".join(repr(n) for n in unknown) or repr(text)
        raise UsageError(f"--edgeprof-columns {text!r}: unknown column {bad}; accepted: {', '.join(DEFAULT_COLUMNS)}")
    return names


def render(run: SavedRun, *, width: int = 100, columns: Sequence[str] = DEFAULT_COLUMNS, quiet: bool = False) -> list[str]:
    """The summary's lines: the table (unless ``quiet``), the recommendation, what did not fit."""
    lines = [] if quiet else _table(list(run.cells.values()), columns, width)
    lines += _wrapped(recommendation(run), width)
    if not quiet:
        lines += _wrapped(_beyond(run), width)
    return lines


def _wrapped(lines: list[str], width: int) -> list[str]:
    """Each line within ``width``, its continuation indented one step further."""
    out = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()))
        wrapped = textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_long_words=False) or [""]
        out += [part.replace(NO_BREAK, " ") for part in wrapped]
    return out


def _table(cells: list[SavedCell], names: Sequence[str], width: int) -> list[str]:
    columns = [(COLUMNS[name], [COLUMNS[name].text(c) for c in cells]) for name in names]
    columns = [(column, texts) for column, texts in columns if any(t != "-" for t in texts)]  # none: left out
    ids, verdicts = [c.id for c in cells], [verdict_text(c) for c in cells]
    while True:
        headers = ["cell", *(column.header for column, _ in columns), "verdict"]
        rows = [ids, *(texts for _, texts in columns), verdicts]
        widths = [max(len(h), *(len(v) for v in values)) for h, values in zip(headers, rows)]
        if sum(widths) + 2 * (len(widths) - 1) <= width or not columns:
            break
        columns.remove(max(columns, key=lambda pair: pair[0].priority))  # the least important goes first
    lines = [_line(headers, widths)]
    lines += [_line([values[index] for values in rows], widths) for index in range(len(cells))]
    return lines


def _line(texts: list[str], widths: list[int]) -> str:
    """The cell id and the verdict read left to right, the numbers line up on the right."""
    last = len(texts) - 1
    return "  ".join(t.ljust(w) if i in (0, last) else t.rjust(w) for i, (t, w) in enumerate(zip(texts, widths))).rstrip()


def recommendation(run: SavedRun) -> list[str]:
    """The recommendation's lines: the cell `edgeprof limits` recommends and its numbers, or why none (also the
    dashboard's)."""
    if not any(cell.measurement.latency for cell in run.cells.values()):
        return ["recommended: none: no cell was timed (--benchmark-disable?), so there is no throughput to rank by"]
    try:
        best = limits.recommend(run)
    except UsageError as exc:  # the cells within every budget were not timed
        return [f"recommended: none: {exc}"]
    if best is None:
        return ["recommended: none: no cell stayed within every budget"]
    numbers = ", ".join(number.replace(" ", NO_BREAK) for number in limits.numbers(best))
    target = limits.emulated_target(run)
    best_at = limits.objective_of(run, "throughput").label
    deployments = limits.across_deployments(run, best)
    return [f"recommended{f' for {target}' if target else ''} (best {best_at} within every budget): {best.id}",
            f"  {numbers}", *([f"  {deployments}"] if deployments else [])]


def _beyond(run: SavedRun) -> list[str]:
    lines = []
    for limit in limits.find_limits(run):
        if limit.first_beyond is not None:
            reason = "; ".join(limit.why) or limit.first_beyond.outcome.words
            lines.append(f"  {limit.first_beyond.id}: {reason}")
    return ["did not fit:", *lines] if lines else []

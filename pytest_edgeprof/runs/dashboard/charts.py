"""One metric of one cell over a machine's runs as an inline SVG chart: no script, no network.

The measured value per run as a line of points; its interval as a bar through each point; the budget as a
dashed step line (named, not drawn, where it is far off the scale); a regressed run's point in red with a
ring; an emulated target's predicted figure as a second, dashed line. Every point has a ``<title>`` (the
browser's tooltip) with its run and value. All text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from pytest_edgeprof.runs.dashboard.data import Point, Series

WIDTH, HEIGHT = 820, 260
LEFT, RIGHT, TOP, BOTTOM = 92, 250, 18, 58  # the plot area's margins: value labels left, legend right
OFF_SCALE = 4.0  # a budget more than this many times the largest figure is named, not drawn
MEASURED, PREDICTED, BUDGET, REGRESSED = "#1f77b4", "#ff7f0e", "#7f8c8d", "#d62728"


def svg_chart(series: Series, predicted_label: str = "predicted") -> str:
    """The chart of ``series`` as an ``<svg>`` element, ``data-metric`` naming its metric."""
    metric, points = series.metric, series.points
    figures = [v for p in points for v in (p.value, p.low, p.high, p.predicted) if v is not None]
    budgets = [p.budget for p in points if p.budget is not None]
    ceiling = OFF_SCALE * max(abs(v) for v in figures)
    drawn_budgets = [b for b in budgets if b <= ceiling]
    low, high = _value_range(figures + drawn_budgets)
    scale = _Scale(len(points), low, high)
    parts = [f'<svg class="chart" data-metric="{escape(metric.name)}" xmlns="http://www.w3.org/2000/svg" '
             f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(metric.label)} over runs">',
             f"<title>{escape(metric.label)} over runs</title>"]
    parts += _axes(scale, points, metric.format)
    if drawn_budgets:
        parts.append(_budget_path(scale, points, ceiling))
    parts += _intervals(scale, points)
    parts.append(_line(scale, [p.value for p in points], MEASURED, "measured"))
    if any(p.predicted is not None for p in points):
        parts.append(_line(scale, [p.predicted for p in points], PREDICTED, "predicted", dashed=True))
        parts += _dots(scale, points, metric.format, predicted=True)
    parts += _dots(scale, points, metric.format)
    parts += _legend(points, ceiling, predicted_label)
    parts.append("</svg>")
    return "\n".join(parts)


class _Scale:
    """Run index and value to SVG coordinates."""

    def __init__(self, count: int, low: float, high: float) -> None:
        self.count, self.low, self.high = count, low, high

    def x(self, index: int) -> float:
        inner = WIDTH - LEFT - RIGHT
        return LEFT + (inner / 2 if self.count == 1 else inner * index / (self.count - 1))

    def y(self, value: float) -> float:
        inner = HEIGHT - TOP - BOTTOM
        return TOP + inner * (self.high - value) / (self.high - self.low)

    @property
    def step(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(self.count - 1, 1)


def _value_range(values: Sequence[float]) -> tuple[float, float]:
    """The y axis: the figures with a margin of 8 % (5 % of the value where every figure is the same)."""
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    return (max(low - pad, 0.0) if low >= 0 else low - pad), high + pad


def _axes(scale: _Scale, points: Sequence[Point], fmt: Callable[..., str]) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}" fill="none" stroke="#ccc"/>']
    for value, text in _ticks(scale, fmt):
        y = scale.y(value)
        parts.append(f'<line x1="{LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{escape(text)}</text>')
    every = max(1, -(-len(points) // 8))  # at most eight run labels
    for index, point in enumerate(points):
        if index % every == 0 or index == len(points) - 1:
            x = scale.x(index)
            parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="end" font-size="10" '
                         f'transform="rotate(-25 {x:.1f} {bottom + 14})">{escape(point.tick)}</text>')
    return parts


def _ticks(scale: _Scale, fmt: Callable[..., str]) -> list[tuple[float, str]]:
    """Five values up the axis, written with as many digits as it takes for their labels to differ."""
    values = [scale.low + (scale.high - scale.low) * i / 4 for i in range(5)]
    for digits in (3, 4, 5, 6):
        texts = [fmt(v, digits=digits) for v in values]
        if len(set(texts)) == len(texts):
            break
    return list(zip(values, texts))


def _budget_path(scale: _Scale, points: Sequence[Point], ceiling: float) -> str:
    """A step line: each run's budget across half the run spacing on either side (a budget off the scale: none)."""
    half = scale.step / 2
    segments = [f"M{max(scale.x(i) - half, LEFT):.1f},{scale.y(p.budget):.1f}H{min(scale.x(i) + half, WIDTH - RIGHT):.1f}"
                for i, p in enumerate(points) if p.budget is not None and p.budget <= ceiling]
    return (f'<path class="budget" d="{" ".join(segments)}" stroke="{BUDGET}" stroke-width="1.5" '
            'stroke-dasharray="6 4" fill="none"/>')


def _intervals(scale: _Scale, points: Sequence[Point]) -> list[str]:
    parts = []
    for i, p in enumerate(points):
        if p.low is not None and p.high is not None:
            x, top, bottom = scale.x(i), scale.y(p.high), scale.y(p.low)
            parts.append(f'<path class="interval" d="M{x:.1f},{top:.1f}V{bottom:.1f}M{x - 4:.1f},{top:.1f}h8'
                         f'M{x - 4:.1f},{bottom:.1f}h8" stroke="{MEASURED}" stroke-opacity="0.5" fill="none"/>')
    return parts


def _line(scale: _Scale, values: Sequence[float | None], color: str, css: str, dashed: bool = False) -> str:
    """A line through the values, broken where a run has none."""
    commands, pen_down = [], False
    for i, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{scale.x(i):.1f},{scale.y(value):.1f}")
        pen_down = True
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return f'<path class="{css}" d="{" ".join(commands)}" stroke="{color}" stroke-width="2" fill="none"{dash}/>'


def _dots(scale: _Scale, points: Sequence[Point], fmt: Callable[..., str], predicted: bool = False) -> list[str]:
    parts = []
    for i, p in enumerate(points):
        value = p.predicted if predicted else p.value
        if value is None:
            continue
        text = f"{p.label}: {'predicted ' if predicted else ''}{fmt(value)}"
        if not predicted and p.low is not None and p.high is not None:
            text += f" (interval {fmt(p.low)} to {fmt(p.high)})"
        if p.budget_text and not predicted:
            text += f", budget {p.budget_text}"
        x, y = scale.x(i), scale.y(value)
        if predicted:
            parts.append(f'<circle class="point predicted" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="white" '
                         f'stroke="{PREDICTED}" stroke-width="1.5"><title>{escape(text)}</title></circle>')
        elif p.regressed:
            parts.append(f'<circle class="point measured regressed" cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{REGRESSED}" '
                         f'stroke="{REGRESSED}" stroke-width="3" stroke-opacity="0.35">'
                         f"<title>{escape(text)}: REGRESSION</title></circle>")
        else:
            parts.append(f'<circle class="point measured" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{MEASURED}">'
                         f"<title>{escape(text)}</title></circle>")
    return parts


def _legend(points: Sequence[Point], ceiling: float, predicted_label: str) -> list[str]:
    entries = [(MEASURED, "measured", "")]
    if any(p.low is not None for p in points):
        entries.append((MEASURED, "interval (bars)", ""))
    if any(p.predicted is not None for p in points):
        entries.append((PREDICTED, predicted_label, "5 3"))
    drawn = sorted({p.budget_text for p in points if p.budget is not None and p.budget <= ceiling})
    far = sorted({p.budget_text for p in points if p.budget_text} - set(drawn))
    if drawn:
        entries.append((BUDGET, f"budget {', '.join(drawn)}", "6 4"))
    if far:
        entries.append((BUDGET, f"budget {', '.join(far)}: off the scale", "6 4"))
    if any(p.regressed for p in points):
        entries.append((REGRESSED, "regression", ""))
    parts, x = [], WIDTH - RIGHT + 12
    for row, (color, text, dash) in enumerate(entries):
        y = TOP + 10 + 18 * row
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x}" x2="{x + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" stroke-width="2"{dashed}/>')
        parts.append(f'<text class="legend" x="{x + 24}" y="{y}" font-size="11">{escape(text)}</text>')
    return parts

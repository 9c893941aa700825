"""The dashboard's HTML pages: the index (the latest run per machine and its recommendation), a page per
machine (its cells), a page per machine and cell (a chart per metric). Static files, relative links, no
script and nothing fetched from the network; every text from a run is escaped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from html import escape

from pytest_edgeprof.runs.dashboard.charts import svg_chart
from pytest_edgeprof.runs.dashboard.data import (
    MachineHistory,
    RegressionMark,
    Series,
    cell_series,
    commit_text,
    emulated_targets,
    run_label,
)
from pytest_edgeprof.runs.summary import recommendation, verdict_text

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse}th,td{text-align:left;padding:.25em .8em;border-bottom:1px solid #eee;"
         "vertical-align:top}pre{margin:0;white-space:pre-wrap}.regressed{color:#d62728;font-weight:bold}"
         "section.metric{margin:1.5em 0}nav{margin-bottom:1em}")


def file_stem(name: str) -> str:
    """A machine's or cell's name as a file name: safe characters, and a digest so two names never share one
    (a name comes from a saved run: data, never a path)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:60].lstrip(".") or "_"
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def page(title: str, body: Sequence[str], up: str = "") -> str:
    """A whole HTML page; ``up`` is the relative path back to the dashboard's folder ("" or "../")."""
    return "\n".join([
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<link rel="icon" href="data:,">',  # no favicon request (a 404 would be a console error)
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f'<nav><a href="{up}index.html">all machines</a></nav>',
        *body,
        "</body></html>",
    ]) + "\n"


def _latest_regressions(history: MachineHistory, regressions: Collection[RegressionMark]) -> list[RegressionMark]:
    latest = history.latest.id
    return [r for r in regressions if r.machine == history.machine and r.run == latest]


def index_page(histories: Sequence[MachineHistory], regressions: Collection[RegressionMark]) -> str:
    rows = ["<tr><th>machine</th><th>device</th><th>latest run</th><th>branch</th><th>runs</th>"
            "<th>regressions</th><th>recommendation</th></tr>"]
    for history in histories:
        latest = history.latest.run
        flagged = _latest_regressions(history, regressions)
        flagged_text = (f'<span class="regressed">{len(flagged)}</span>' if flagged else "0")
        advice = "\n".join(recommendation(latest))
        rows.append(
            f'<tr class="machine" data-machine="{escape(history.machine)}">'
            f'<td><a href="{file_stem(history.machine)}/index.html">{escape(history.machine)}</a></td>'
            f"<td>{escape(latest.device)}</td><td>{escape(run_label(history.latest))}</td>"
            f"<td>{escape(str(latest.commit_info.get('branch') or ''))}</td><td>{len(history.runs)}</td>"
            f"<td>{flagged_text}</td><td><pre>{escape(advice)}</pre></td></tr>")
    body = ["<h1>edgeprof dashboard</h1>",
            f"<p>{len(histories)} machine(s); the latest run of each and what it recommends.</p>",
            f'<table id="machines">{"".join(rows)}</table>']
    return page("edgeprof dashboard", body)


def machine_page(history: MachineHistory, regressions: Collection[RegressionMark], stems: dict[str, str]) -> str:
    latest = history.latest
    flagged = {r.cell for r in _latest_regressions(history, regressions)}
    rows = ["<tr><th>cell</th><th>latest verdict</th><th>regressed in the latest run</th></tr>"]
    for cell_id in history.cell_ids():
        saved = latest.run.cells.get(cell_id)
        verdict = verdict_text(saved) if saved else "not in the latest run"
        mark = '<span class="regressed">yes</span>' if cell_id in flagged else ""
        rows.append(f'<tr class="cell"><td><a href="{stems[cell_id]}.html">{escape(cell_id)}</a></td>'
                    f"<td>{escape(verdict)}</td><td>{mark}</td></tr>")
    runs = "".join(f"<li>{escape(run_label(m))}: {escape(str(m.run.path))}</li>" for m in reversed(history.runs))
    body = [f"<h1>{escape(history.machine)}</h1>",
            f"<p>device {escape(latest.run.device or 'unknown')}; latest run {escape(run_label(latest))}</p>",
            f"<pre>{escape(chr(10).join(recommendation(latest.run)))}</pre>",
            f'<h2>Cells</h2><table id="cells">{"".join(rows)}</table>',
            f"<h2>Runs, newest first</h2><ul>{runs}</ul>"]
    return page(f"edgeprof dashboard: {history.machine}", body, up="../")


def cell_page(history: MachineHistory, cell_id: str, regressions: Collection[RegressionMark]) -> str:
    series: list[Series] = cell_series(history, cell_id, regressions)
    targets = emulated_targets(history.runs, cell_id)
    predicted = f"predicted for {', '.join(targets)}" if targets else "predicted"
    body = [f"<h1>{escape(cell_id)}</h1>",
            f'<p>on <a href="index.html">{escape(history.machine)}</a>, over {len(history.runs)} run(s) '
            f"oldest to newest{_commits(history)}</p>"]
    if targets:
        body.append(f"<p>Emulated: the dashed line is the figure {escape(predicted)} (a prediction, not a "
                    "measurement), beside the host's measured one.</p>")
    for s in series:
        body.append(f'<section class="metric" data-metric="{escape(s.metric.name)}">'
                    f"<h2>{escape(s.metric.label)}</h2>{svg_chart(s, predicted)}</section>")
    return page(f"{cell_id} on {history.machine}", body, up="../")


def _commits(history: MachineHistory) -> str:
    commits = [c for m in history.runs if (c := commit_text(m.run))]
    return f" (commits {escape(commits[0])} to {escape(commits[-1])})" if len(set(commits)) > 1 else ""

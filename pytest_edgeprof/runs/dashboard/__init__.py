"""The dashboard: a static site of saved runs, several machines and commits (``edgeprof dashboard``).

``write_dashboard(runs, out, regressions)`` is a pure function of its arguments: it reads no store and no
file, so run files and a results store give it the same :class:`MachineRun` list. The site::

    out/index.html                     the latest run per machine and its recommendation
    out/<machine>/index.html           the machine's cells and runs
    out/<machine>/<cell>.html          per metric, an inline SVG chart over the machine's runs

``data.py`` assembles what is shown, ``charts.py`` draws one chart, ``pages.py`` writes the HTML.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from pytest_edgeprof.runs.dashboard.data import MachineRun, RegressionMark, histories
from pytest_edgeprof.runs.dashboard.pages import cell_page, file_stem, index_page, machine_page

__all__ = ["MachineRun", "RegressionMark", "write_dashboard"]


def write_dashboard(runs: Sequence[MachineRun], out: Path, regressions: Collection[RegressionMark] = ()) -> Path:
    """Write the site under ``out`` (made if missing; the pages it writes are replaced) and return its index."""
    machines = histories(runs)
    out.mkdir(parents=True, exist_ok=True)
    for history in machines:
        folder = out / file_stem(history.machine)
        folder.mkdir(exist_ok=True)
        stems = {cell_id: file_stem(cell_id) for cell_id in history.cell_ids()}
        (folder / "index.html").write_text(machine_page(history, regressions, stems), encoding="utf8")
        for cell_id, stem in stems.items():
            (folder / f"{stem}.html").write_text(cell_page(history, cell_id, regressions), encoding="utf8")
    index = out / "index.html"
    index.write_text(index_page(machines, regressions), encoding="utf8")
    return index

"""edgeprof dashboard: a static site of real saved runs of several machines, loaded in real headless Chromium.

The runs are a real pytest run (saved_runs.grid_run) and a real emulated run saved by main, copied and
relabelled as several runs (machine, commit, time) of three machines. Chromium is Debian's
/usr/bin/chromium driven by Playwright through ``executable_path``; one browser serves the module.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from saved_runs import with_budget_keys

from pytest_edgeprof.cli import main
from pytest_edgeprof.metrics import LATENCY
from pytest_edgeprof.runs.dashboard import MachineRun, RegressionMark, write_dashboard
from pytest_edgeprof.runs.dashboard.data import CHARTED
from pytest_edgeprof.runs.dashboard.pages import file_stem
from pytest_edgeprof.runs.saved import load_run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
EMULATED = Path(__file__).parent / "data" / "run_saved_by_main_c15c1ce_emulated.json"
HOSTILE = "<script>alert(1)</script> & board"  # a machine name from a saved run is data: shown, never run
CELL = "tiny-base-b2-48x48"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright's Python package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


class Loaded:
    """A page opened over file://, with every console error, page error, dialog and request it made."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.errors.append(f"dialog: {d.message}"), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def count(self, selector: str) -> int:
        return int(self.page.locator(selector).count())

    def close(self) -> None:
        assert self.errors == []
        assert all(url.startswith(("file://", "data:")) for url in self.requests), self.requests  # nothing fetched
        self.page.close()


def relabelled(source: Path, target: Path, *, node: str, commit: str, day: int, latency_factor: float = 1.0) -> Path:
    """A copy of a real saved run as another machine's run of another commit and day."""
    data = json.loads(source.read_text())
    data["machine_info"]["node"] = node
    data["machine_info"].setdefault("edgeprof", {})["machine"] = node  # as --edgeprof-machine saves it
    data["commit_info"] = {**data.get("commit_info", {}), "id": commit * 40, "branch": "main", "dirty": False}
    data["datetime"] = f"2026-01-{day:02d}T10:00:00+00:00"
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        for key in ("latency_ms_median", "latency_ms_ci95", "latency_ms_repeat95"):
            if isinstance(info.get(key), list):
                info[key] = [v * latency_factor for v in info[key]]
            elif isinstance(info.get(key), float):
                info[key] *= latency_factor
    target.write_text(json.dumps(data))
    return target


@pytest.fixture
def runs(grid_run: Path, tmp_path: Path) -> dict[str, list[Path]]:
    """board-a: three runs (the last 30 % slower, under a memory budget); board-b: two; a hostile name: one;
    board-e: two emulated runs."""
    budget = load_run(grid_run).cells[CELL].value("memory")
    budgeted = with_budget_keys(grid_run, tmp_path / "budgeted.json", budget * 1.5)
    made: dict[str, list[Path]] = {"board-a": [], "board-b": [], HOSTILE: [], "board-e": []}
    for day, (node, commit, factor) in enumerate([("board-a", "a", 1.0), ("board-a", "b", 1.0), ("board-a", "c", 1.3),
                                                  ("board-b", "a", 1.0), ("board-b", "c", 1.0), (HOSTILE, "c", 1.0)], 1):
        made[node].append(relabelled(budgeted, tmp_path / f"run{day}.json", node=node, commit=commit, day=day,
                                     latency_factor=factor))
    for day, commit in ((10, "d"), (11, "e")):
        made["board-e"].append(relabelled(EMULATED, tmp_path / f"emulated{day}.json", node="board-e", commit=commit, day=day))
    return made


def test_the_index_has_a_row_per_machine_and_its_recommendation(browser, runs, tmp_path, capsys):
    files = [str(p) for paths in runs.values() for p in paths]
    assert main(["dashboard", *files, "--out", str(tmp_path / "site")]) == 0
    index = Path(capsys.readouterr().out.strip())
    assert index == tmp_path / "site" / "index.html"
    loaded = Loaded(browser, index)
    machines = loaded.page.locator("tr.machine")
    names = [machines.nth(i).get_attribute("data-machine") for i in range(machines.count())]
    assert names == sorted(runs)
    text = loaded.page.inner_text("#machines")
    assert HOSTILE in text and loaded.count("#machines script") == 0  # escaped: shown as text, not run
    assert text.count("recommended") == len(runs)
    assert "recommended for host" in text  # the emulated machine's recommendation answers for its target
    loaded.close()
    for name in names:  # every machine's page and its cells' pages are there and load cleanly
        machine = Loaded(browser, index.parent / file_stem(name) / "index.html")
        assert machine.count("tr.cell") >= 4  # the grid has 5 cells (and 3 out of memory), the emulated run 4
        machine.page.locator("tr.cell a").first.click()
        machine.page.wait_for_load_state("load")
        assert machine.count("svg.chart") >= 2
        machine.close()


@pytest.fixture
def site(runs: dict[str, list[Path]], tmp_path: Path) -> tuple[Path, list[MachineRun]]:
    machine_runs = [MachineRun(node, load_run(p)) for node, paths in runs.items() for p in paths]
    slow = next(m for m in machine_runs if m.machine == "board-a" and m.run.commit_info["id"].startswith("c"))
    index = write_dashboard(machine_runs, tmp_path / "site", [RegressionMark("board-a", CELL, "latency", slow.id)])
    return index, machine_runs


def test_a_cell_page_has_a_chart_per_metric_with_interval_budget_and_regression(browser, site):
    index, machine_runs = site
    latest = [m for m in machine_runs if m.machine == "board-a"][-1].run.cells[CELL]
    expected = [m.name for m in CHARTED if latest.value(m) is not None]
    loaded = Loaded(browser, index.parent / file_stem("board-a") / f"{file_stem(CELL)}.html")
    charts = loaded.page.locator("svg.chart")
    assert [charts.nth(i).get_attribute("data-metric") for i in range(charts.count())] == expected
    assert {"latency", "memory", "throughput", "flops"} <= set(expected)
    latency = loaded.page.locator('svg.chart[data-metric="latency"]')
    assert latency.locator("circle.measured").count() == 3  # one point per run, oldest to newest
    with_interval = [m for m in machine_runs if m.machine == "board-a" and m.run.cells[CELL].measurement.latency.repeat95_ms]
    assert latency.locator("path.interval").count() == len(with_interval)  # drawn where the run saved one
    [regressed] = latency.locator("circle.regressed").all()
    assert regressed.text_content().endswith("REGRESSION")  # its tooltip
    assert latency.locator("circle.measured").last.get_attribute("class") == "point measured regressed"  # the slow run
    assert loaded.page.locator('svg.chart[data-metric="memory"] path.budget').count() == 1
    assert "budget" in loaded.page.locator('svg.chart[data-metric="memory"]').text_content()
    assert loaded.page.locator('svg.chart[data-metric="throughput"] path.budget').count() == 0
    assert loaded.page.locator("circle.regressed").count() == 1  # only the metric and run the mark names
    loaded.close()


def test_an_emulated_cell_shows_predicted_against_measured(browser, site):
    index, machine_runs = site
    run = next(m.run for m in machine_runs if m.machine == "board-e")
    cell = next(c for c in run.cells.values() if c.value("target_latency") is not None and c.measurement.latency.repeat95_ms)
    loaded = Loaded(browser, index.parent / file_stem("board-e") / f"{file_stem(cell.id)}.html")
    latency = loaded.page.locator('svg.chart[data-metric="latency"]')
    assert latency.locator("path.predicted").count() == 1 and latency.locator("circle.predicted").count() == 2
    assert "predicted for host" in latency.text_content()
    assert latency.locator("path.interval").count() == 2  # the repeat interval of each run's median
    [_, high] = cell.measurement.latency.repeat95_ms
    assert f"to {LATENCY.format(high)})" in latency.locator("circle.measured").first.text_content()
    assert loaded.page.locator('svg.chart[data-metric="target_latency"]').count() == 0  # never a chart of its own
    assert loaded.page.locator('svg.chart[data-metric="flops"] path.predicted').count() == 0
    loaded.close()


def test_the_store_gives_the_runs_and_marks_its_check_s_regressions(browser, runs, tmp_path, capsys):
    """Five steady runs of board-a, then one 30 % slower: edgeprof check's regression is the one marked."""
    steady = [relabelled(runs["board-a"][0], tmp_path / f"steady{day}.json", node="board-a", commit=str(day), day=day,
                         latency_factor=1 + day / 1000) for day in range(12, 17)]
    slow = relabelled(runs["board-a"][0], tmp_path / "slow.json", node="board-a", commit="f", day=20, latency_factor=1.3)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["store", "import", *map(str, [*steady, slow, *runs["board-b"]]), "--store", store]) == 0
    assert main(["check", "--store", store]) == 1
    capsys.readouterr()
    assert main(["dashboard", "--store", store, "--out", str(tmp_path / "stored")]) == 0
    index = Path(capsys.readouterr().out.strip())
    loaded = Loaded(browser, index)
    assert [r.get_attribute("data-machine") for r in loaded.page.locator("tr.machine").all()] == ["board-a", "board-b"]
    loaded.close()
    cell = Loaded(browser, index.parent / file_stem("board-a") / f"{file_stem(CELL)}.html")
    latency = cell.page.locator('svg.chart[data-metric="latency"]')
    assert latency.locator("circle.measured").count() == 6
    assert latency.locator("circle.measured").last.get_attribute("class") == "point measured regressed"
    marked = cell.page.locator("svg.chart:has(circle.regressed)").all()
    assert sorted(chart.get_attribute("data-metric") for chart in marked) == ["latency", "throughput"]  # one slow run
    assert cell.page.locator("circle.regressed").count() == 2
    cell.close()


def test_bad_input_is_one_line(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("EDGEPROF_STORE", raising=False)
    assert main(["dashboard", "--out", str(tmp_path / "x")]) == 2
    assert "no results store: give --store URL or set EDGEPROF_STORE" in capsys.readouterr().err
    assert main(["dashboard", str(runs["board-a"][0]), "--store", "sqlite:///runs.db", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not both" in err
    assert not (tmp_path / "x").exists()
    shutil.rmtree(tmp_path / "site", ignore_errors=True)

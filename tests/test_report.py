"""edgeprof report: PNG plots per model and an index, from real saved runs."""

import re

import pytest
from matplotlib.image import imread
from saved_runs import with_budget_keys

from pytest_edgeprof.cli import main
from pytest_edgeprof.runs.report import write_report
from pytest_edgeprof.runs.saved import load_run


@pytest.fixture
def budgeted(grid_run, tmp_path):
    budget = load_run(grid_run).cells["tiny-base-b2-48x48"].value("memory")
    return with_budget_keys(grid_run, tmp_path / "budgeted.json", budget, oom_batch=8)


def test_report_writes_every_plot_and_an_index(budgeted, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(budgeted), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    names = ["tiny_latency.png", "tiny_memory.png", "tiny_energy.png", "tiny_accuracy.png", "index.html"]
    assert [p.rsplit("/", 1)[-1] for p in printed] == names
    for name in names[:-1]:
        image = imread(out / name)  # a real PNG matplotlib can read back
        height, width = image.shape[:2]
        assert width >= 700 and height >= 400
        assert image.std() > 0.05  # not a blank canvas
    index = (out / "index.html").read_text()
    run = load_run(budgeted)
    assert "edgeprof report: cpu" in index and run.when in index and str(budgeted) in index
    assert re.findall(r'<img src="([^"]+)"', index) == names[:-1]
    assert "out of memory" in index  # the limits table is on the page


def test_what_a_run_lacks_is_said_not_plotted(grid_run, tmp_path):
    written = write_report(load_run(grid_run), tmp_path)
    assert [p.name for p in written] == ["tiny_latency.png", "tiny_memory.png", "tiny_energy.png", "index.html"]
    assert "Not in this run, so not plotted: top-1 with FLOPs." in (tmp_path / "index.html").read_text()


def test_energy_plot_names_its_source_and_labels_estimates(budgeted, tmp_path):
    # the title text is kept in the figure; read it back from the figure that is saved
    from pytest_edgeprof.runs.report import _energy_figure, _series

    run = load_run(budgeted)
    figure = _energy_figure("tiny", _series(list(run.cells.values())), run)
    [source] = {c.measurement.energy.source for c in run.cells.values() if c.value("energy") is not None}
    assert source in figure.axes[0].get_ylabel()
    assert ("ESTIMATED" in figure.get_suptitle()) == source.endswith("estimate")


def test_memory_plot_has_budget_line_and_oom_marks(budgeted):
    from pytest_edgeprof.runs.report import _memory_figure, _series

    run = load_run(budgeted)
    figure = _memory_figure("tiny", _series(list(run.cells.values())), run)
    ax = figure.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("budget ") for label in labels) and "out of memory" in labels
    budget_mb = run.cells["tiny-base-b2-48x48"].value("memory") / 1e6
    assert any(list(line.get_ydata()) == [budget_mb, budget_mb] for line in ax.get_lines())
    oom_marks = [line for line in ax.get_lines() if line.get_marker() == "x" and len(line.get_xdata()) == 1]
    assert len(oom_marks) == 3 and all(line.get_xdata()[0] == 8 for line in oom_marks)


def test_bad_run_is_a_usage_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "r")]) == 2
    assert "missing.json': no such file" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()

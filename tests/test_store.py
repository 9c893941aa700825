"""The results store on SQLite: a real pytest run stored by --edgeprof-store and read back through compare
store:ID, history and check; an injected regression found, a steady series left alone; the URL parser."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.cli import main
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.runs.saved import parse_run
from pytest_edgeprof.runs.store import open_store, parse_store_url

FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3", "-p", "no:cacheprovider"]
SUITE = '''
from torch import nn
from pytest_edgeprof.measurement import Cell


def test_b1(edgeprof):
    edgeprof(nn.Conv2d(3, 4, 3), cell=Cell("tiny", "base", 1, (3, 16, 16)))


def test_b2(edgeprof):
    edgeprof(nn.Conv2d(3, 4, 3), cell=Cell("tiny", "base", 2, (3, 16, 16)))
'''
BREAKS_THE_STORE = '''
import sqlite3


def test_zz_drops_the_store_tables():
    sqlite3.connect("{db}").execute("DROP TABLE edgeprof_values")
'''


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {}


@pytest.fixture
def stored_run(pytester: pytest.Pytester, stored: dict[str, Path]) -> dict[str, Path]:
    """One real run of two tiny cells, stored by --edgeprof-store and saved by --benchmark-json (made once)."""
    if not stored:
        pytester.makepyfile(test_tiny=SUITE)
        db, saved = pytester.path / "runs.db", pytester.path / "run.json"
        result = pytester.runpytest(*FAST, f"--edgeprof-store=sqlite:///{db}", "--edgeprof-machine=lab-board",
                                    f"--benchmark-json={saved}")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines([f"edgeprof: run stored as store:1 in sqlite:///{db}"])
        stored.update(db=db, saved=saved)
    return stored


def _edgeprof(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_stored_run_reads_back_as_the_saved_json(stored_run: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{stored_run['db']}"
    saved_doc = json.loads(stored_run["saved"].read_text())
    with open_store(url) as store:
        (row,) = store.runs()
        assert (row.run_id, row.machine) == (1, "lab-board")
        assert json.loads(row.document) == saved_doc  # the very document pytest-benchmark saved, nothing lost
        assert store.load("store:1").cells.keys() == parse_run(stored_run["saved"], saved_doc).cells.keys()
        assert len(row.run.cells) == 2 and row.run.commit_info == saved_doc["commit_info"]
    code, out, _ = _edgeprof(capsys, "store", "import", str(stored_run["saved"]), "--store", url)
    assert code == 0 and "already stored as store:1" in out  # imported twice: stored once
    code, out, _ = _edgeprof(capsys, "compare", "store:1", str(stored_run["saved"]), "--store", url)
    assert code == 0 and "A: store:1" in out and "tiny-base-b1-16x16" in out and "tiny-base-b2-16x16" in out
    code, out, _ = _edgeprof(capsys, "history", "--store", url, "--machine", "lab-board", "--cell", "tiny-base-b2-16x16")
    assert code == 0 and out.splitlines()[0] == "lab-board  tiny-base-b2-16x16  median latency" and "store:1" in out


def _variant(document: dict, latency_factor: float, day: int, commit: str) -> dict:
    """The real run with every cell's median latency scaled, saved on another day and commit."""
    copy = json.loads(json.dumps(document))
    copy["datetime"] = f"2030-01-{day:02d}T10:00:00+00:00"
    copy["commit_info"] = {**copy["commit_info"], "id": commit, "branch": "main"}
    for bench in copy["benchmarks"]:
        bench["extra_info"]["latency_ms_median"] *= latency_factor
    return copy


def test_check_finds_an_injected_regression_and_leaves_a_steady_series_alone(
        stored_run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    document = json.loads(stored_run["saved"].read_text())
    with open_store(url) as store:
        for day, factor in enumerate((1.0, 1.01, 0.99, 1.005, 0.995, 1.002), start=1):
            store.add(_variant(document, factor, day, f"c{day:02d}"), "lab-board")
    code, out, err = _edgeprof(capsys, "check", "--store", url)
    assert code == 0, err
    assert "lab-board: store:6 (commit c06 on main) against 5 previous run(s): no regression" in out
    with open_store(url) as store:
        store.add(_variant(document, 1.3, 20, "c20"), "lab-board")
    code, out, err = _edgeprof(capsys, "check", "--store", url, "--baseline", "main")
    assert code == 1 and "2 regressed cell(s)" in out
    lines = [line for line in err.splitlines() if line.startswith("REGRESSION")]
    assert len(lines) == 2 and all("median latency" in line and "store:7" in line for line in lines)
    assert {line.split(": ")[1].split(" ")[0] for line in lines} == {"tiny-base-b1-16x16", "tiny-base-b2-16x16"}


def test_a_store_unwritable_at_the_end_keeps_the_run_as_json(pytester: pytest.Pytester) -> None:
    db = pytester.path / "runs.db"
    pytester.makepyfile(test_tiny=SUITE, test_zz=BREAKS_THE_STORE.format(db=db))
    result = pytester.runpytest(*FAST, f"--edgeprof-store=sqlite:///{db}")
    result.assert_outcomes(passed=3)
    (line,) = [line for line in result.stdout.lines if "cannot write the run" in line]
    kept = Path(line.split("the run is saved as ")[1].split(":")[0])
    assert kept.is_file() and len(parse_run(kept, json.loads(kept.read_text())).cells) == 2
    sqlite3.connect(db).execute("CREATE TABLE edgeprof_values (run_id, machine, cell, metric, value)").connection.commit()
    assert main(["store", "import", str(kept), "--store", f"sqlite:///{db}"]) == 0  # added later: never a lost run
    with open_store(f"sqlite:///{db}") as store:
        assert [len(r.run.cells) for r in store.runs()] == [2]


def test_an_unreachable_store_stops_the_run_before_anything_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tiny=SUITE)
    result = pytester.runpytest(*FAST, "--edgeprof-store=postgresql://edgeprof:pw@127.0.0.1:1/runs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.stderr.lines if line.strip()]  # one line, its password hidden
    assert "cannot connect and create its tables" in line and ":pw@" not in line
    assert "passed" not in result.stdout.str()


def test_without_sqlalchemy_the_store_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'pytest-edgeprof\[store\]'"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}")


@pytest.mark.parametrize(("text", "dialect", "driver"), [
    ("sqlite:///runs.db", "sqlite", "sqlite:///runs.db"),
    ("sqlite:////tmp/runs.db", "sqlite", "sqlite:////tmp/runs.db"),
    ("postgresql://u:p@db.lab:5433/bench", "postgresql", "postgresql+psycopg://u:p@db.lab:5433/bench"),
    ("postgresql+psycopg://u@[::1]/bench", "postgresql", "postgresql+psycopg://u@[::1]/bench"),
])
def test_accepted_urls(text: str, dialect: str, driver: str) -> None:
    url = parse_store_url(text)
    assert (url.dialect, url.sqlalchemy) == (dialect, driver)


@given(st.text(max_size=60) | st.from_regex(r"(sqlite|postgresql|mysql)://[\x00-\x7f]{0,30}", fullmatch=True))
def test_any_text_is_a_store_url_or_one_usage_line_naming_what_is_accepted(text: str) -> None:
    try:
        url = parse_store_url(text)
    except UsageError as exc:
        message = str(exc)
        assert "\n" not in message.replace(text, "") and "accepted: sqlite:///PATH" in message
        return
    assert url.dialect in ("sqlite", "postgresql") and url.sqlalchemy.startswith(("sqlite:///", "postgresql+psycopg://"))


def test_the_check_commands_lookback_is_the_checks() -> None:
    from pytest_edgeprof.cli.check import LOOKBACK as shown
    from pytest_edgeprof.runs.store.check import LOOKBACK

    assert shown == LOOKBACK

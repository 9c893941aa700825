"""The results store on a real PostgreSQL server: 8 processes writing at once, nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from postgres_server import postgresql_url  # noqa: F401 (the fixture)

from pytest_edgeprof.cli import main
from pytest_edgeprof.runs.store import open_store

RUN = Path(__file__).parent / "data" / "run_saved_by_main_cfd3de0.json"
WRITERS = 8
SHARED = 4  # runs every writer stores: each must be stored once
OWN = 3  # runs only one writer stores

WRITER = """
import json, sys
from pytest_edgeprof.runs.store import open_store

url, writer, shared, own, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
base = json.loads(open(path).read())

def run(tag):
    copy = json.loads(json.dumps(base))
    copy["commit_info"]["id"] = tag
    return copy

with open_store(url) as store:  # all eight create the tables at once too
    tags = [f"shared-{i}" for i in range(shared)] + [f"own-{writer}-{i}" for i in range(own)]
    for i, tag in enumerate(tags if writer % 2 else tags[::-1]):
        run_id, added = store.add(run(tag), f"board-{writer % 2}")
        print(tag, run_id, added)
"""


def test_eight_writers_at_once_store_every_run_once(postgresql_url: str, tmp_path: Path) -> None:  # noqa: F811
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")]))}
    writers = [subprocess.Popen([sys.executable, str(script), postgresql_url, str(n), str(SHARED), str(OWN), str(RUN)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for n in range(WRITERS)]
    outputs = [writer.communicate(timeout=120) for writer in writers]
    assert all(writer.returncode == 0 for writer in writers), [err for _, err in outputs]
    reported = [line.split() for out, _ in outputs for line in out.splitlines()]
    added = [tag for tag, _, new in reported if new == "True"]
    assert sorted(added) == sorted({tag for tag, _, _ in reported})  # each run added by exactly one writer
    assert len({(tag, run_id) for tag, run_id, _ in reported}) == SHARED + WRITERS * OWN  # one id per run, wherever asked
    cells = len(json.loads(RUN.read_text())["benchmarks"])
    with open_store(postgresql_url) as store:
        runs = store.runs()
        assert len(runs) == SHARED + WRITERS * OWN
        assert sorted(r.commit_id for r in runs) == sorted({tag for tag, _, _ in reported})
        assert all(len(r.run.cells) >= cells for r in runs)  # each whole: the run and its values in one transaction
        per_run = {r.run_id: len([p for p in store.history(run_ids=[r.run_id])]) for r in runs}
        assert len(set(per_run.values())) == 1 and min(per_run.values()) > 0  # no run with its values twice or missing


def test_compare_history_and_check_read_a_postgresql_store(postgresql_url: str, tmp_path: Path,  # noqa: F811
                                                           capsys) -> None:
    url = postgresql_url
    assert main(["store", "import", str(RUN), "--store", url, "--machine", "pg-board"]) == 0
    with open_store(url) as store:
        (first,) = [r.run_id for r in store.runs("pg-board")]
    assert main(["compare", f"store:{first}", str(RUN), "--store", url]) == 0
    assert main(["history", "--store", url, "--machine", "pg-board", "--metric", "memory"]) == 0
    assert main(["check", "--store", url, "--machine", "pg-board"]) == 0  # one run: nothing to judge against
    out = capsys.readouterr().out
    assert f"A: store:{first}" in out and "pg-board  greedy-base-b1-16x16  peak memory" in out
    assert "no previous run to judge it against" in out

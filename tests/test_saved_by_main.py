"""Runs saved before the record and metric registry existed stay readable, and read back the same.

``data/run_saved_by_main_cfd3de0.json`` and its journal were saved by main at commit cfd3de0 (the
last commit before the redesign) running ``data/made_them.py.txt``:

    pytest made_them.py --device cpu --models mobilenet_v3_small --batch-sizes 1,2 --shapes 32 \
        --prune 0.3 --eval-data evaldata --eval-limit 8 --budget latency=1s \
        --benchmark-max-time 0.02 --benchmark-min-rounds 3 --benchmark-json=run.json

(evaldata: 2 classes x 4 generated images). It holds passed, over-budget and out-of-memory cells, a
pruned variant, accuracy, CodeCarbon's energy estimate and a cell whose FLOPs could not be counted.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from pytest_edgeprof.measurement import Measurement
from pytest_edgeprof.metrics import ENERGY
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.runs import limits
from pytest_edgeprof.runs.compare import compare_runs, parse_fail_spec, regressions
from pytest_edgeprof.runs.journal import Journal
from pytest_edgeprof.runs.report import write_report
from pytest_edgeprof.runs.saved import load_run

DATA = Path(__file__).parent / "data"
RUN = DATA / "run_saved_by_main_cfd3de0.json"
JOURNAL = DATA / "journal_saved_by_main_cfd3de0.jsonl"


def _saved_extra_infos() -> list[dict]:
    data = json.loads(RUN.read_text())
    return [b["extra_info"] for b in data["benchmarks"]] + [c["extra_info"] for c in data["edgeprof"]["untimed_cells"]]


def test_every_saved_cell_reads_into_a_record_that_writes_the_same_keys_back():
    infos = _saved_extra_infos()
    assert len(infos) == 7
    for info in infos:  # the run predates the precision and runtime axes: it reads as their defaults
        assert Measurement.from_extra_info(info).to_extra_info() == {**info, "precision": "fp32", "runtime": "eager"}


def test_the_records_parts_hold_what_was_saved():
    run = load_run(RUN)
    pruned = run.cells["mobilenet_v3_small-p30-b1-32x32"].measurement
    assert pruned.pruning is not None and pruned.pruning.method == "magnitude" and pruned.pruning.target == 0.3
    assert pruned.accuracy is not None and pruned.accuracy.eval_set == "evaldata: 8 images, 2 classes"
    assert pruned.energy is not None and pruned.energy.is_estimate
    assert run.cells["mobilenet_v3_small-p30-b1-32x32"].label(ENERGY) == "energy per image (estimate)"
    greedy = run.cells["greedy-base-b2-16x16"].measurement
    assert greedy.outcome is Outcome.OUT_OF_MEMORY and greedy.cost is not None and greedy.cost.flops is None
    assert run.cells["mobilenet_v3_small-base-b2-32x32"].outcome is Outcome.OVER_BUDGET


def test_limits_compare_and_report_answer_from_it(tmp_path):
    run = load_run(RUN)
    found = {(limit.model, limit.variant): limit for limit in limits.find_limits(run)}
    base = found["mobilenet_v3_small", "base"]
    assert base.largest_within.cell.batch_size == 1 and base.first_beyond.cell.batch_size == 2
    assert base.why == ("peak memory 10.6 MB > budget 10.4 MB",)
    assert found["greedy", "base"].why[0] == "out of memory (tried to allocate 1130 TB)"
    assert limits.recommend(run).id == "greedy-base-b1-16x16"  # within every budget, the most images a second
    assert regressions(run, run, parse_fail_spec("latency:10%,memory:5%")) == []
    assert len(compare_runs(run, run).cells) == 7
    written = write_report(run, tmp_path / "report")
    assert written[-1].name == "index.html" and any(p.name == "mobilenet_v3_small_memory.png" for p in written)


def test_its_journal_is_read_without_a_warning_and_its_cells_are_measured_again():
    """Lines keyed the old way (device|weights|cell id) are read, but no key of this version equals
    one of them, so a resume measures those cells again instead of trusting what they left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entries = Journal(JOURNAL).read()
    assert len(entries) == 7 and all(key.startswith("cpu|random|") for key in entries)

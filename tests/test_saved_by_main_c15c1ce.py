"""Runs saved by main at commit c15c1ce read back as they were saved, and answer as they did then.

``data/run_saved_by_main_c15c1ce*.json`` (and the first run's journal) were saved by main at c15c1ce,
the commit before the record was split into typed fields, each naming its saved key. In a folder holding
``made_them.py.txt`` (as ``test_made_them.py``), ``benchmarks/test_inference.py`` and ``evaldata`` (2
classes x 4 generated images), with ``--benchmark-max-time 0.02 --benchmark-min-rounds 3`` each:

    run_saved_by_main_c15c1ce.json: pytest test_inference.py test_made_them.py --device cpu \
        --models mobilenet_v3_small --batch-sizes 1,2 --shapes 32 --prune 0.3 --eval-data evaldata \
        --eval-limit 8 --budget latency=1s --runtime eager,onnxruntime --cooldown 0.1s
    ..._emulated.json: pytest test_inference.py --device cpu --models mobilenet_v3_small \
        --batch-sizes 1,2 --shapes 32 --emulate host --budget memory=1GB --runtime eager,onnxruntime
    ..._int8.json: pytest test_inference.py --device cpu --models mobilenet_v3_small --batch-sizes 1 \
        --shapes 32 --precision int8 --runtime onnxruntime,eager --no-energy

Between them they hold passed, over-budget and out-of-memory cells, a pruned variant, top-1, energy
estimates, ONNX Runtime's deployment, int8's quantization, an emulated target's predicted keys and the
cooldown's device state. ``data/answers_c15c1ce.json`` holds what c15c1ce's compare, limits,
emulate-check and report answered from them (the run's path written as RUN).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_edgeprof.measurement import Measurement
from pytest_edgeprof.metrics import METRICS, number
from pytest_edgeprof.runs import emulate_check, limits
from pytest_edgeprof.runs.compare import compare_runs, to_csv, to_json
from pytest_edgeprof.runs.journal import Journal
from pytest_edgeprof.runs.report import write_report
from pytest_edgeprof.runs.saved import load_run

DATA = Path(__file__).parent / "data"
RUNS = ["run_saved_by_main_c15c1ce.json", "run_saved_by_main_c15c1ce_emulated.json",
        "run_saved_by_main_c15c1ce_int8.json"]
ANSWERS = DATA / "answers_c15c1ce.json"


def _saved_extra_infos(name: str) -> list[dict]:
    data = json.loads((DATA / name).read_text())
    return [b["extra_info"] for b in data["benchmarks"]] + [c["extra_info"] for c in data.get("edgeprof", {}).get("untimed_cells", [])]


def _without_gate_keys(text: str) -> str:
    """compare --json as it was at c15c1ce: per metric A, B and the change, without the keys the statistical gate
    added since (``regressed``, and ``significance`` for latency and throughput), which the next test checks."""
    report = json.loads(text)
    for cell in report["cells"]:
        for entry in cell["metrics"].values():
            entry.pop("regressed"), entry.pop("significance", None)
    return json.dumps(report, indent=2)


def test_the_gate_keys_answer_for_the_run_against_itself():
    run = load_run(DATA / RUNS[0])
    judged = 0
    for cell in json.loads(to_json(compare_runs(run, run)))["cells"]:
        for key, entry in cell["metrics"].items():
            assert entry["regressed"] is False
            assert ("significance" in entry) is (key in ("latency_ms_median", "throughput_ips"))
            if entry.get("significance") is not None:  # None: a cell saved with too few rounds for an interval
                judged += 1
                assert entry["significance"]["significant"] is False
                assert entry["significance"]["interval_a"] == entry["significance"]["interval_b"]
    assert judged


def answers(name: str, tmp_path: Path) -> dict[str, object]:
    """What compare (the run against itself), limits, emulate-check and report answer from a saved run."""
    path = DATA / name
    run = load_run(path)
    comparison = compare_runs(run, run)
    found: dict[str, object] = {
        "compare_csv": to_csv(comparison), "compare_json": _without_gate_keys(to_json(comparison)),
        "limits": limits.render(run), "limits_json": limits.to_json(run),
    }
    if limits.emulated_target(run):
        report = emulate_check.check_run(run)
        found |= {"emulate_check": emulate_check.render(report), "emulate_check_json": emulate_check.to_json(report)}
    found["report_files"] = [p.name for p in write_report(run, tmp_path / "report")]
    return {key: value.replace(str(path), "RUN") if isinstance(value, str) else value for key, value in found.items()}


@pytest.mark.parametrize("name", RUNS)
def test_every_saved_cell_reads_into_a_record_that_writes_the_same_keys_back(name):
    infos = _saved_extra_infos(name)
    assert infos
    for info in infos:
        assert Measurement.from_extra_info(info).to_extra_info() == info


@pytest.mark.parametrize("name", RUNS)
def test_a_metric_reads_the_number_saved_under_its_key(name):
    for info in _saved_extra_infos(name):
        record = Measurement.from_extra_info(info)
        for metric in METRICS.values():
            assert record.value(metric) == number(info.get(metric.key)), (info["model"], metric.name)


def test_the_records_parts_hold_what_was_saved():
    measured = load_run(DATA / RUNS[0])
    pruned = measured.cells["mobilenet_v3_small-p30-onnxruntime-b1-32x32"].measurement
    assert pruned.pruning is not None and pruned.pruning.target == 0.3
    assert pruned.deployment is not None and pruned.deployment.runtime_version.startswith("onnxruntime")
    assert pruned.accuracy is not None and pruned.accuracy.eval_set.startswith("evaldata")
    assert "cooldown" in (pruned.device_state or {})
    emulated = load_run(DATA / RUNS[1]).cells["mobilenet_v3_small-base-b2-32x32"].measurement
    assert emulated.prediction is not None and emulated.prediction.target == "host"
    assert emulated.value("target_throughput") == pytest.approx(2 / (emulated.prediction.latency_ms / 1e3))
    int8 = load_run(DATA / RUNS[2]).cells["mobilenet_v3_small-base-int8-onnxruntime-b1-32x32"].measurement
    assert int8.deployment is not None and int8.deployment.quantization


@pytest.mark.parametrize("name", RUNS)
def test_compare_limits_and_report_answer_as_they_did_when_it_was_saved(name, tmp_path):
    assert answers(name, tmp_path) == json.loads(ANSWERS.read_text())[name]


def test_its_journal_reads_back_the_records_it_holds():
    journal = DATA / "journal_saved_by_main_c15c1ce.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    entries = Journal(journal).read()
    assert len(lines) == len(entries) == 19
    for line in lines:
        assert entries[line["key"]].measurement.to_extra_info() == line["extra_info"]

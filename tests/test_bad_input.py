"""Bad input, everywhere: every try of tools/bad_input_cases.py gives its one line and exit code, and
arbitrary text, journal lines and saved runs are answered or named as bad in one line."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from bad_input_cases import (
    CLI_CASES,
    COVERED_ELSEWHERE,
    FAST,
    GRID,
    PYTEST_CASES,
    Case,
    Outcome,
    check,
    make_files,
    run_cli,
    run_json,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_edgeprof.budgets import parse_budget_spec
from pytest_edgeprof.cli import _positive_int
from pytest_edgeprof.device import resolve_device
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Latency, Measurement
from pytest_edgeprof.metrics import parse_bytes, parse_percent
from pytest_edgeprof.models.grid import parse_batch_sizes, parse_models, parse_shapes
from pytest_edgeprof.models.image_folder import parse_eval_limit
from pytest_edgeprof.models.prune import check_method, parse_prune_targets, variant_target
from pytest_edgeprof.remote.address import parse_board_address, parse_board_python
from pytest_edgeprof.remote.labgrid_place import parse_board_wait, parse_place_spec
from pytest_edgeprof.runs import compare, limits
from pytest_edgeprof.runs.journal import FORMAT, Journal, JournalWarning
from pytest_edgeprof.runs.report import write_report
from pytest_edgeprof.runs.saved import load_run
from pytest_edgeprof.runs.store.url import parse_store_url


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_files(tmp_path_factory.mktemp("bad_input"))


@pytest.mark.parametrize("case", PYTEST_CASES, ids=[case.tried for case in PYTEST_CASES])
def test_pytest_input(case: Case, files: dict[str, Path], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    case = case.formatted(files)
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_suite=case.suite)
    if case.ini:
        pytester.makeini("[pytest]\n" + case.ini + "\n")
    result = pytester.runpytest(*FAST, *GRID, *case.argv)
    check(case, Outcome(int(result.ret), result.stdout.str(), result.stderr.str()), files)


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.tried for case in CLI_CASES])
def test_edgeprof_input(case: Case, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    case = case.formatted(files)
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    check(case, run_cli(case), files)


# --- files the tool writes --------------------------------------------------------------------------


def test_report_writes_only_inside_its_folder_whatever_the_model_is_called(tmp_path: Path) -> None:
    run = tmp_path / "escape.json"
    run.write_text(run_json({"model": "../../escaped", "variant": "base", "batch_size": 1, "input_shape": [3, 8, 8],
                              "latency_ms_median": 1.0}))
    out = tmp_path / "deep" / "report"
    written = write_report(load_run(run), out)
    assert written and all(path.resolve().parent == out.resolve() for path in written)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(["escape.json", *(p.name for p in written)])


# --- large input spaces: arbitrary text is a valid parse or one UsageError line -------------------

PARSERS: dict[str, Callable[[str], object]] = {
    "--budget": parse_budget_spec, "--isolate-memory-limit": parse_bytes, "top1 budget": parse_percent,
    "--shapes": parse_shapes, "--batch-sizes": parse_batch_sizes, "--models": parse_models,
    "--prune": parse_prune_targets, "--prune-method": check_method, "--variant": variant_target,
    "--eval-limit": parse_eval_limit, "--device": resolve_device, "--top/--runs": _positive_int,
    "--fail": compare.parse_fail_spec, "--board-wait": parse_board_wait, "labgrid place": parse_place_spec,
    "ssh board": parse_board_address, "--board-python": parse_board_python, "--edgeprof-store": parse_store_url,
}
_SPEC_LIKE = st.from_regex(
    r"((memory|latency|p99|energy|throughput|top1|top5|flops|speed)([=:] ?-?[0-9.²٣]{0,4} ?(GB|GiB|ms|s|%|J|ips|pp|x)?)?,?){1,3}",
    fullmatch=True,
)
_LIST_LIKE = st.from_regex(r"[ 0-9xX.,²٣a-z_-]{0,12}", fullmatch=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=24) | _SPEC_LIKE | _LIST_LIKE | st.integers(0, 10**30).map(str))
def test_any_text_parses_or_is_one_usage_error_line(text: str) -> None:
    for name, parse in PARSERS.items():
        try:
            parse(text)
        except UsageError as exc:
            assert str(exc) and "\n" not in str(exc), (name, text)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_VALID_LINE = {"format": FORMAT, "key": "cpu|random|m-base-b1-8x8", "outcome": "passed",
               "extra_info": {"model": "m"}, "latencies_s": [0.01], "iterations": 1, "message": ""}


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(_VALID_LINE)), _JSON, max_size=3) | _JSON)
def test_any_journal_line_is_read_or_skipped_with_a_warning(tmp_path_factory, change) -> None:
    line = {**_VALID_LINE, **change} if isinstance(change, dict) else change
    path = tmp_path_factory.mktemp("journal") / "j.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = Journal(path).read()
    assert len(entries) + sum(issubclass(w.category, JournalWarning) for w in caught) == 1
    for entry in entries.values():  # what a replay reads: rounds, extra_info, outcome and message
        assert all(isinstance(text, str) for text in (entry.key, entry.message))
        assert isinstance(entry.measurement, Measurement) and entry.iterations >= 1
        if entry.latencies_s:
            assert Latency.of(entry.latencies_s).median_ms >= 0


_RUN_KEYS = ["model", "variant", "batch_size", "input_shape", "outcome", "latency_ms_median", "throughput_ips",
             "peak_mem_bytes", "energy_j_per_image", "flops", "top1", "budgets", "budget_verdicts", "error", "device",
             "latency_ms_repeat95", "latency_ms_ci95", "latency_rerun95", "latency_rerun_pairs"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_RUN_KEYS), _JSON), min_size=1, max_size=3),
       st.sampled_from(["benchmarks", "edgeprof", "machine_info", "datetime", None]), _JSON)
@example([("latency_ms_median", 0)], "edgeprof", None)  # a median of 0 gives no throughput, not a ZeroDivisionError
def test_any_saved_run_is_answered_or_named_as_bad(tmp_path_factory, edits, top_key, top_value) -> None:
    info = {"model": "m", "variant": "base", "batch_size": 2, "input_shape": [3, 8, 8], "outcome": "passed",
            "latency_ms_median": 2.0, "throughput_ips": 1000.0, "peak_mem_bytes": 1e6, "flops": 1e6,
            "budgets": {"memory": "1MB"},
            "budget_verdicts": [{"metric": "memory", "budget": "1MB", "limit": 1e6, "measured": 1e6, "passed": True}]}
    baseline_info = dict(info)
    info.update(dict(edits))
    data = json.loads(run_json(info))
    if top_key is not None:
        data[top_key] = top_value
    folder = tmp_path_factory.mktemp("runs")
    (folder / "a.json").write_text(run_json(baseline_info))
    (folder / "b.json").write_text(json.dumps(data))
    try:
        run_a, run_b = load_run(folder / "a.json"), load_run(folder / "b.json")
        found = compare.regressions(run_a, run_b, compare.parse_fail_spec("latency,memory:1%,top1:-1,throughput"))
        comparison = compare.compare_runs(run_a, run_b)
        compare.render_table(comparison), compare.to_csv(comparison), compare.to_json(comparison, found)
        limits.render(run_b), limits.to_json(run_b)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(folder / "b.json") in str(exc)


def test_case_inventory_is_complete() -> None:
    """Every edgeprof subcommand and every plugin option has at least one bad value tried here or elsewhere."""
    from pytest_edgeprof.cli import SUBCOMMANDS
    from pytest_edgeprof.plugin.options import OPTIONS

    cases = PYTEST_CASES + CLI_CASES + COVERED_ELSEWHERE
    commands = {case.argv[1] for case in cases if not case.pytest}
    assert set(SUBCOMMANDS) <= commands | {"frobnicate"}
    text = " ".join(" ".join(case.argv) + " " + case.ini + " " + case.tried for case in cases)
    untried = [o.flag for o in OPTIONS.values() if not o.flag_only and o.flag not in text and o.ini not in text]
    assert untried == [], untried
    assert len({case.tried for case in cases}) == len(cases)

"""--emulate: the target profiles' figures, the predicted memory, latency and energy, how they are
saved and judged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from pytest_edgeprof.budgets import Budget, evaluate
from pytest_edgeprof.device import BOARDS, EMULATED, JETSON_NANO, cpu_profile, parse_emulate
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.cell import measure_cell
from pytest_edgeprof.measure.emulation import Target, resolve_target
from pytest_edgeprof.measure.energy import open_meter
from pytest_edgeprof.measure.roofline import KINDS, RooflineEfficiency
from pytest_edgeprof.measure.timing import StoppingRule
from pytest_edgeprof.measurement import Cell, Measurement, Memory, Prediction
from pytest_edgeprof.metrics import LATENCY, MEMORY, PREDICTED, TARGET_LATENCY, TARGET_MEMORY

FIGURES = ("peak_flops", "bandwidth", "usable_memory", "runtime_overhead", "launch", "power")


@pytest.mark.parametrize("name", [name for name, board in BOARDS.items() if board.figures is not None])
def test_every_figure_of_an_emulated_profile_cites_its_source(name):
    figures = BOARDS[name].figures
    assert set(figures.sources) == set(FIGURES)
    assert all(len(text) > 20 for text in figures.sources.values())
    assert figures.peak_flops["fp32"] > 0 and figures.bandwidth_bytes_per_s > 0
    assert 0 < figures.usable_memory_bytes <= BOARDS[name].memory_bytes


def test_jetson_nano_figures_are_the_data_sheets():
    assert JETSON_NANO.peak_flops["fp16"] == pytest.approx(472e9, rel=0.01)  # "472 GFLOPs"
    assert JETSON_NANO.bandwidth_bytes_per_s == 25.6e9
    assert "int8" not in JETSON_NANO.peak_flops  # Maxwell has no int8 dot product


def test_parse_emulate_takes_the_profiles_with_figures():
    assert parse_emulate(" Jetson-Nano ") == "jetson-nano" and parse_emulate("host") == "host"
    with pytest.raises(UsageError, match=r"--emulate jetson-xavier-nx: no published figures gathered .*accepted: host, "):
        parse_emulate("jetson-xavier-nx")
    with pytest.raises(UsageError, match=r"unknown --emulate profile 'nano'; accepted: host, jetson-nano"):
        parse_emulate("nano")


@given(st.text(max_size=20))
def test_parse_emulate_answers_any_text_with_a_profile_or_one_usage_error(text):
    try:
        assert parse_emulate(text) in EMULATED
    except UsageError as exc:
        assert "\n" not in str(exc) and "accepted: host" in str(exc)


def test_a_precision_without_figures_is_one_usage_error_naming_it():
    target = resolve_target("jetson-nano", cpu_profile())
    target.require("fp16")
    with pytest.raises(UsageError, match=r"--emulate jetson-nano: no peak FLOP/s for int8 in its profile \(it has fp32, fp16\)"):
        target.require("int8")


def measured_with(target: Target) -> Measurement:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    cell = Cell("tiny", "base", 2, (3, 24, 24))
    meter = open_meter(cpu_profile(), no_energy=True)
    return measure_cell(model, cell, cpu_profile(), meter, StoppingRule(max_time_s=0.05).run, target=target)


def test_predicted_memory_is_the_measured_peak_plus_the_targets_overhead_at_the_same_precision():
    nano = resolve_target("jetson-nano", cpu_profile())
    measurement = measured_with(nano)
    prediction = measurement.prediction
    assert prediction.peak_mem_bytes == measurement.memory.peak_mem_bytes + JETSON_NANO.runtime_overhead_bytes
    assert prediction.target == "jetson-nano" and prediction.precision == "fp32"
    # a board's latency: the runtime-aware predictor fitted on published board latencies (predict/)
    assert prediction.latency_ms > 0 and prediction.latency_method.startswith("predicted, not measured: eager stream")
    assert "held-out error" in prediction.latency_method and "90 % interval" in prediction.latency_method
    assert prediction.energy_j_per_image > 0 and prediction.energy_note.startswith("estimate")


def test_a_lower_power_mode_predicts_a_slower_cell_and_a_mode_the_board_lacks_is_a_usage_error():
    maxn = measured_with(resolve_target("jetson-nano", cpu_profile())).prediction
    five = measured_with(resolve_target("jetson-nano", cpu_profile(), power_mode="5W")).prediction
    assert five.latency_ms > maxn.latency_ms * 1.3 and "(5W)" in five.energy_note
    with pytest.raises(UsageError, match=r"unknown --power-mode '20W' for jetson-nano; accepted: MAXN, 5W"):
        resolve_target("jetson-nano", cpu_profile(), power_mode="20W")
    with pytest.raises(UsageError, match=r"--power-mode 5W: the host runs at the mode it is in"):
        resolve_target("host", cpu_profile(), power_mode="5W")


def test_predicted_figures_never_stand_in_the_measured_keys():
    measurement = measured_with(resolve_target("rtx-3070", cpu_profile()))
    info = measurement.to_extra_info()
    assert info[MEMORY.key] == measurement.memory.peak_mem_bytes and info[LATENCY.key] == measurement.latency.median_ms
    assert info[TARGET_MEMORY.key] == measurement.prediction.peak_mem_bytes
    assert info[TARGET_LATENCY.key] == measurement.prediction.latency_ms != info[LATENCY.key]
    assert info["target_throughput_ips"] == pytest.approx(2 / (info[TARGET_LATENCY.key] / 1e3))
    back = Measurement.from_extra_info(info)
    assert back.prediction == measurement.prediction and back.memory.peak_mem_bytes == info[MEMORY.key]
    assert not any(key.startswith("target") for key in back.other)


def test_a_target_without_an_envelope_predicts_no_energy_and_says_why():
    bare = Target("bare", {"fp32": 1e9}, 1e9, 10**9, 0, RooflineEfficiency(dict.fromkeys(KINDS, 1.0), 0.0, "bound"))
    prediction = measured_with(bare).prediction
    assert prediction.energy_j_per_image is None and "no power envelope for bare" in prediction.energy_note


def test_budgets_of_an_emulated_run_judge_the_predicted_figures():
    cell = Cell("tiny", "base", 1, (3, 8, 8))
    measurement = Measurement(cell, "cpu", memory=Memory(1000, 500, None, "test"),
                              prediction=Prediction("jetson-nano", "fp32", 5000, 2.0, "roofline", None))
    budgets = {"memory": Budget("memory", 2000, "2kB"), "p99": Budget("p99", 80, "80ms")}
    assert [v.passed for v in evaluate(budgets, measurement)] == [True, False]  # p99 not measured
    memory, p99 = evaluate(budgets, measurement, emulated=True)
    assert (memory.measured, memory.passed, memory.predicted) == (5000, False, True)
    assert memory.metric is PREDICTED["memory"]
    assert memory.text() == "predicted peak memory 5 kB > budget 2 kB"
    assert p99.text() == "p99 latency on the target not predicted, budget 80 ms"
    back = Measurement.from_extra_info({**measurement.to_extra_info(), "budget_verdicts": [memory.as_dict()]})
    assert back.verdicts == (memory,)


def test_the_host_is_fitted_on_models_other_than_those_its_check_uses():
    from emulate_check import CHECK_MODELS, FIT_MODELS  # tools/emulate_check.py, which fits and checks

    from pytest_edgeprof.measure.emulation import HOST_CPU_EFFICIENCY

    assert not set(FIT_MODELS) & set(CHECK_MODELS) and len(CHECK_MODELS) * 3 * 3 >= 30
    assert all(name in HOST_CPU_EFFICIENCY.basis for name in FIT_MODELS)
    assert set(HOST_CPU_EFFICIENCY.per_kind) == set(KINDS) and HOST_CPU_EFFICIENCY.launch_s > 0


def test_compare_rows_label_the_predicted_figures():
    from pathlib import Path

    from pytest_edgeprof.measurement import Latency
    from pytest_edgeprof.runs.compare import compare_runs, render_table
    from pytest_edgeprof.runs.saved import SavedCell, SavedRun

    def run(measured_ms: float, predicted_ms: float) -> SavedRun:
        measurement = Measurement(Cell("net", "base", 1, (3, 8, 8)), "cpu", latency=Latency.of([measured_ms / 1e3] * 6),
                                  prediction=Prediction("jetson-nano", "fp32", 5000, predicted_ms, "roofline", None))
        return SavedRun.of(Path("run"), [SavedCell("test", measurement)])

    rows = render_table(compare_runs(run(10, 2.0), run(11, 2.5))).splitlines()
    assert any(" median latency " in row and row.endswith("+10.0 %") for row in rows)
    assert any(" predicted latency " in row and row.endswith("+25.0 %") for row in rows)

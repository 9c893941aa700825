"""edgeprof predict and the board latency predictor: bad input, a fit on a small table of published
latencies, the physical floor, power modes and the JSON shape."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest

from pytest_edgeprof.cli import main
from pytest_edgeprof.measure.predict import calibration
from pytest_edgeprof.measure.predict.boards import machine
from pytest_edgeprof.measure.predict.fit import fit_group, predicted_s
from pytest_edgeprof.measure.predict.graph import model_graph, split_spec
from pytest_edgeprof.measure.predict.predictor import Request, predict
from pytest_edgeprof.measure.predict.table import Entry, key
from pytest_edgeprof.power_modes import highest

JSON_KEYS = {"model", "target", "power_mode", "precision", "runtime", "batch_size", "input_shape", "latency_ms",
             "latency_ms_interval", "peak_mem_bytes", "fits", "energy_j_per_image", "method"}
SMALL = ("alexnet", "squeezenet1_1", "resnet18", "resnet34", "vgg11", "densenet121")


@pytest.mark.parametrize(("argv", "says"), [
    ("resnet18 --target jetson-tx2", "unknown --target 'jetson-tx2'; accepted: jetson-nano"),
    ("resnt18 --target jetson-nano", "unknown model 'resnt18'"),
    ("resnet18 --target jetson-nano --precision int8 --runtime tensorrt", "jetson-nano has no int8 (its profile has fp32, fp16)"),
    ("resnet18 --target jetson-nano --precision fp64", "unknown --precision 'fp64'; accepted: fp32, fp16, bf16, int8"),
    ("resnet18 --target jetson-nano --runtime tvm", "unknown --runtime 'tvm'; accepted: eager, compile"),
    ("resnet18 --target jetson-nano --power-mode 20W", "unknown --power-mode '20W' for jetson-nano; accepted: MAXN, 5W"),
    ("resnet18 --target jetson-orin-nano --precision int8", "accepted runtimes for int8: onnxruntime, tensorrt"),
    ("resnet18", "the following arguments are required: --target"),
])
def test_bad_input_is_one_line_and_exit_2(argv: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", *argv.split()]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def _small_table(tmp_path, board: str = "jetson-nano", runtime: str = "tensorrt") -> list[calibration.Published]:
    rows = [r for r in calibration.load() if r.group == (board, runtime) and r.model in SMALL]
    path = tmp_path / "small.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(calibration.COLUMNS)
        for r in rows:
            writer.writerow([r.board, r.model, r.batch, f"{r.shape[0]}x{r.shape[1]}", r.precision, r.runtime,
                             r.power_mode, r.latency_ms, r.what_is_timed, r.source])
    return calibration.load(path)


def test_a_fit_on_a_small_table_predicts_its_held_out_models_and_the_command_uses_it(tmp_path) -> None:
    rows = _small_table(tmp_path)
    at = machine("jetson-nano", highest("jetson-nano"), "jetson-nano")
    fitted = fit_group(rows, at)
    assert fitted.held_out and not set(fitted.held_out) & set(fitted.fitted_on)  # held out: never fitted on
    low, high = fitted.interval
    assert low <= 1.0 <= high
    for row in rows:  # four models fitted: within ±25 % on them, within a factor of two on the two held out
        error = predicted_s(row, at, fitted.params) * 1e3 / row.latency_ms
        assert (0.75 < error < 1.25) if row.model in fitted.fitted_on else (0.5 < error < 2.0), row.model
    table = {key("jetson-nano", "tensorrt"): Entry(fitted.params, fitted.interval, tuple(fitted.fitted_on),
                                                   tuple(fitted.held_out), 1.0, 2, ("fp16",))}
    held = next(r for r in rows if r.model in fitted.held_out)
    answer = predict(Request(held.model, "jetson-nano", "fp16", "tensorrt"), table)
    assert set(answer) >= JSON_KEYS
    assert answer["latency_ms"] == pytest.approx(predicted_s(held, at, fitted.params) * 1e3, rel=1e-3)
    assert answer["latency_ms_interval"][0] <= answer["latency_ms"] <= answer["latency_ms_interval"][1]
    assert "predicted, not measured" in answer["method"] and "held-out error" in answer["method"]


def test_a_figure_below_the_physical_floor_is_reported_impossible_and_not_fitted(tmp_path) -> None:
    rows = _small_table(tmp_path)
    vgg = next(r for r in rows if r.model == "vgg11")
    rows = [replace(vgg, latency_ms=0.5) if r is vgg else r for r in rows]  # 15 GFLOPs in 0.5 ms on 472 GFLOP/s
    fitted = fit_group(rows, machine("jetson-nano", highest("jetson-nano"), "jetson-nano"))
    assert any(line.startswith("vgg11 fp16 b1: 0.5 ms < floor") for line in fitted.impossible)
    assert "vgg11" not in fitted.fitted_on + fitted.held_out


def test_eager_costs_host_dispatch_a_lower_power_mode_is_slower_and_json_holds_one_object_per_model(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "mobilenet_v2", "resnet18", "--target", "jetson-nano", "--precision", "fp16",
                 "--runtime", "eager", "--json"]) == 0
    maxn = json.loads(capsys.readouterr().out)
    assert [row["model"] for row in maxn] == ["mobilenet_v2", "resnet18"]
    assert all(set(row) >= JSON_KEYS and row["power_mode"] == "MAXN" for row in maxn)
    assert main(["predict", "mobilenet_v2", "--target", "jetson-nano", "--precision", "fp16", "--runtime", "eager",
                 "--power-mode", "5W", "--json"]) == 0
    five = json.loads(capsys.readouterr().out)[0]
    assert five["latency_ms"] > maxn[0]["latency_ms"] * 1.3  # 918 vs 1479 MHz CPU, 640 vs 921.6 MHz GPU
    trt = predict(Request("mobilenet_v2", "jetson-nano", "fp16", "tensorrt"))
    assert trt["latency_ms"] < maxn[0]["latency_ms"] / 2  # fused kernels, no per-op Python dispatch


def test_a_calibration_model_may_carry_its_number_of_classes() -> None:
    assert split_spec("resnet18[num_classes=3]") == ("resnet18", (("num_classes", 3),))
    assert split_spec("timm:resnet18") == ("timm:resnet18", ())
    with pytest.raises(ValueError, match=r"only \[num_classes=N\]"):
        split_spec("resnet18[width=2]")
    full, three = model_graph("resnet18", 1, (3, 224, 224)), model_graph("resnet18[num_classes=3]", 1, (3, 224, 224))
    assert full.weight_elements - three.weight_elements == 997 * 512 + 997  # the fc head's weights and biases

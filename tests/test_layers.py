"""edgeprof layers: per-layer counts with measured time shares, on a real torchvision model."""

import json

import pytest
import torch
from matplotlib.image import imread
from torchvision.models import resnet18

from pytest_edgeprof.cli import main
from pytest_edgeprof.measure.flops import count_cost
from pytest_edgeprof.runs.layers import profile_layers

SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def profile():
    return profile_layers(resnet18(), SHAPE, batch_size=1, device="cpu", runs=3, name="resnet18")


def test_every_counted_layer_is_listed_with_its_numbers(profile):
    cost = count_cost(resnet18(), SHAPE, 1, per_layer=True)
    by_name = {layer.name: layer for layer in profile.layers}
    assert {layer.name or "(model)" for layer in cost.layers} <= set(by_name)
    assert sum(layer.flops for layer in profile.layers) == cost.flops  # FLOPs add up to the model's
    conv1 = by_name["conv1"]
    assert conv1.type == "Conv2d" and conv1.output_shape == (1, 64, 16, 16)
    assert conv1.params == 64 * 3 * 7 * 7 and conv1.activation_bytes == 64 * 16 * 16 * 4
    assert by_name["fc"].params == 512 * 1000 + 1000


def test_time_shares_are_own_time_of_the_whole(profile):
    assert all(layer.latency_ms >= 0 and 0 <= layer.latency_share <= 1 for layer in profile.layers)
    assert 0.5 < sum(layer.latency_share for layer in profile.layers) <= 1.0 + 1e-9
    convs = [layer for layer in profile.layers if layer.type == "Conv2d"]
    assert sum(layer.latency_share for layer in convs) > 0.2  # where a CNN spends its time
    assert profile.forward_ms > 0 and profile.hooked_ms > 0 and profile.runs == 3


def test_sorted_by_cost(profile):
    by_time = profile.sorted("latency")
    assert [layer.latency_ms for layer in by_time] == sorted((layer.latency_ms for layer in by_time), reverse=True)
    by_flops = profile.sorted("flops")
    assert by_flops[0].flops == max(layer.flops for layer in profile.layers)


def test_command_table_top_n(capsys):
    assert main(["layers", "resnet18", "--shape", "32", "--top", "5", "--runs", "2", "--sort", "flops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("resnet18, batch 1, input 3x32x32, on cpu: forward ")
    assert lines[1] == "sorted by flops, top 5 of " + lines[1].rsplit(" ", 1)[-1]
    assert lines[2].split()[:3] == ["layer", "type", "output"]
    assert len(lines) == 3 + 5
    assert all(line.rstrip().endswith("%") for line in lines[3:])


def test_command_json_and_plot(tmp_path, capsys):
    png = tmp_path / "layers.png"
    assert main(["layers", "mobilenet_v3_small", "--shape", "32", "--batch", "2", "--runs", "2", "--top", "8",
                 "--json", "--plot", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "mobilenet_v3_small" and report["batch_size"] == 2 and report["input_shape"] == [3, 32, 32]
    assert len(report["layers"]) == 8
    first = report["layers"][0]
    assert set(first) == {"name", "type", "output_shape", "flops", "params", "activation_bytes", "latency_ms", "latency_share"}
    assert first["output_shape"][0] == 2
    image = imread(png)
    assert image.shape[0] > 300 and image.std() > 0.05


def test_a_pruned_variant_is_profiled(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # start cold: prune, then cache
    reports = []
    for variant in ("base", "p50"):
        assert main(["layers", "resnet18", "--variant", variant, "--shape", "32", "--runs", "2", "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    base, pruned = reports
    flops = [sum(layer["flops"] for layer in report["layers"]) for report in (base, pruned)]
    assert 0.4 < flops[1] / flops[0] < 0.6  # half the FLOPs at 224; about half at 32 too
    assert list((tmp_path / "pytest-edgeprof" / "variants").iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["resnt18"], "unknown model 'resnt18'"),
        (["resnet18", "--variant", "half"], "variant 'half' is not 'base' or p<percent of FLOPs removed> like p50"),
        (["resnet18", "--top", "0"], "bad count '0'"),
        (["resnet18", "--shape", "3x"], "bad input shape '3x'"),
        (["resnet18", "--device", "tpu"], "unknown --device 'tpu'"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    assert main(["layers", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_clock_waits_for_the_device():
    profile = profile_layers(resnet18(), (3, 64, 64), 4, device="cuda", runs=3, name="resnet18")
    convs = [layer for layer in profile.layers if layer.type == "Conv2d"]
    assert sum(layer.latency_share for layer in convs) > 0.2
    assert profile.device == "cuda"

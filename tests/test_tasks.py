"""Models of every task: names across tasks, timm:NAME, each task's input, and FLOPs that say how they
were counted (the smallest detection and segmentation models, at small shapes)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.flops import count_cost, count_model_cost
from pytest_edgeprof.measurement import Cell, Cost, Measurement
from pytest_edgeprof.models import zoo

DETECTOR, SEGMENTER = "ssdlite320_mobilenet_v3_large", "lraspp_mobilenet_v3_large"
SMALL = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.05", "--benchmark-min-rounds", "3"]
SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""


@pytest.mark.parametrize("name, task", [
    ("resnet18", "classification"), ("vit_b_16", "classification"), ("swin_t", "classification"),
    ("maxvit_t", "classification"), (DETECTOR, "detection"), ("fasterrcnn_mobilenet_v3_large_320_fpn", "detection"),
    ("retinanet_resnet50_fpn", "detection"), ("fcos_resnet50_fpn", "detection"), (SEGMENTER, "segmentation"),
    ("deeplabv3_mobilenet_v3_large", "segmentation"), ("fcn_resnet50", "segmentation"), ("timm:resnet18", "classification"),
])
def test_every_task_resolves_with_its_task(name, task):
    assert zoo.resolve_model_name(name) == name and zoo.task_of(name) == task


@given(st.sampled_from([n for names in zoo.model_names_by_task().values() for n in names]), st.booleans())
def test_any_torchvision_name_resolves_whatever_its_case(name, upper):
    assert zoo.resolve_model_name(f" {name.upper() if upper else name} ") == name


@given(st.text(st.characters(codec="ascii", categories=["Ll", "Nd"]) | st.just("_"), min_size=1, max_size=30))
@settings(max_examples=50)
def test_an_unknown_name_is_one_usage_error_or_a_real_name(text):
    try:
        resolved = zoo.resolve_model_name(text)
    except UsageError as error:
        assert "\n" not in str(error) and repr(text) in str(error)
    else:
        assert resolved in zoo.model_names_by_task()[zoo.task_of(resolved)]


def test_unknown_name_suggests_the_closest_across_tasks():
    with pytest.raises(UsageError, match="did you mean .*ssdlite320_mobilenet_v3_large"):
        zoo.resolve_model_name("ssdlite_mobilenet_v3_large")
    with pytest.raises(UsageError, match="did you mean .*timm:resnet18"):
        zoo.resolve_model_name("timm:resnt18")


def test_timm_without_timm_is_one_usage_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # what Python does for a module that is not installed
    with pytest.raises(UsageError, match=r"optional extra: pip install 'pytest-edgeprof\[timm\]'"):
        zoo.resolve_model_name("timm:resnet18")


def test_timm_models_build_and_count_with_random_weights():
    model = zoo.build_model("timm:resnet18")
    assert not model.training and zoo.reference_input_shape("timm:resnet18") == (3, 224, 224)
    assert count_model_cost("timm:resnet18").macs == count_model_cost("resnet18").macs
    with pytest.raises(UsageError, match="random weights or a state dict's path"):
        zoo.check_weights("timm:resnet18", "DEFAULT")


def test_own_sizes_per_task():
    assert zoo.reference_input_shape(DETECTOR) == (3, 320, 320)
    assert zoo.reference_input_shape("retinanet_resnet50_fpn") == (3, 800, 800)
    assert zoo.reference_input_shape(SEGMENTER) == (3, 520, 520)


def test_a_detector_takes_a_list_at_the_cells_shape_padded_by_its_transform():
    model = zoo.build_model("fasterrcnn_mobilenet_v3_large_320_fpn")
    images = zoo.model_input(model, 3, (3, 65, 64))
    assert isinstance(images, list) and len(images) == 3 and images[0].shape == (3, 65, 64)
    assert zoo.network_input_shape(model, (3, 65, 64)) == (3, 96, 64)
    seen = []
    model.backbone.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 3 and set(detections[0]) == {"boxes", "labels", "scores"}
    assert seen == [(3, 3, 96, 64)]  # not resized to the 320 it was trained at
    segmenter = zoo.build_model(SEGMENTER)
    assert zoo.network_input_shape(segmenter, (3, 65, 64)) == (3, 65, 64)
    assert isinstance(zoo.model_input(segmenter, 2, (3, 64, 64)), torch.Tensor)


def test_a_segmenter_counts_on_meta_and_a_detector_on_a_real_forward():
    segmenter = count_model_cost(SEGMENTER, (3, 64, 64), batch_size=2)
    assert segmenter.method == "meta" and segmenter.note == "" and segmenter.flops > 0
    detector = count_model_cost(DETECTOR, (3, 64, 64), batch_size=2)
    assert detector.method == "real-forward" and "random input" in detector.note
    assert detector.flops == 2 * count_model_cost(DETECTOR, (3, 64, 64)).flops
    with pytest.raises(Exception):  # noqa: B017 (torch raises its own type) - a meta count alone cannot follow the detector's NMS
        count_cost(zoo.build_model(DETECTOR), (3, 64, 64))


@pytest.mark.parametrize("name, aux", [(DETECTOR, False), (SEGMENTER, False), ("deeplabv3_mobilenet_v3_large", True)])
def test_counted_at_the_own_size_matches_torchvisions_ops(name, aux):
    """torchvision's figures were counted on the models its weights build: deeplabv3's with its auxiliary
    classifier."""
    published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    if aux:
        with torch.device("meta"):
            model = zoo.architecture(name, aux_loss=True)
        counted = count_cost(model, zoo.reference_input_shape(name)).macs / 1e9
    else:
        counted = count_model_cost(name).macs / 1e9
    assert counted == pytest.approx(published, rel=0.01)


def test_a_two_stage_detectors_data_dependent_share_is_said_and_the_rest_matches_ops():
    cost = count_model_cost("fasterrcnn_mobilenet_v3_large_320_fpn")
    published = torchvision.models.get_model_weights("fasterrcnn_mobilenet_v3_large_320_fpn").DEFAULT.meta["_ops"]
    assert 0 < cost.data_dependent_flops < cost.flops and "RoI heads" in cost.note
    assert (cost.flops - cost.data_dependent_flops) / 2e9 == pytest.approx(published, rel=0.01)


def test_task_network_shape_and_flops_method_round_trip():
    cost = Cost(10, 5, 3, 12, "", "detection", (3, 96, 64), "real-forward", "depends on proposals")
    measurement = Measurement(Cell(DETECTOR, "base", 2, (3, 65, 64)), "cpu", cost=cost)
    info = measurement.to_extra_info()
    assert info["task"] == "detection" and info["network_input_shape"] == [3, 96, 64]
    assert info["flops_method"] == "real-forward" and "NMS" in info["latency_scope"]
    assert Measurement.from_extra_info(json.loads(json.dumps(info))).cost == cost


def test_detection_and_segmentation_cells_run_in_the_plugin(pytester, tmp_path):
    pytester.makepyfile(SUITE)
    out = tmp_path / "run.json"
    result = pytester.runpytest(*SMALL, "--models", f"{DETECTOR},{SEGMENTER}", "--batch-sizes", "2", "--shapes", "64",
                                f"--benchmark-json={out}")
    result.assert_outcomes(passed=2)
    cells = {b["extra_info"]["model"]: b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]}
    detector, segmenter = cells[DETECTOR], cells[SEGMENTER]
    assert detector["task"] == "detection" and detector["flops_method"] == "real-forward"
    assert detector["network_input_shape"] == [3, 64, 64] and detector["flops"] > 0
    assert detector["throughput_ips"] == pytest.approx(2 / (detector["latency_ms_median"] / 1e3))
    assert segmenter["task"] == "segmentation" and segmenter["flops_method"] == "meta"
    assert segmenter["latency_scope"].startswith("forward")


@pytest.mark.parametrize("name", [DETECTOR, SEGMENTER])
def test_detectors_and_segmenters_prune_to_the_target_keeping_their_outputs(name):
    from pytest_edgeprof.models.prune import prune_to_flops

    shape = (3, 64, 64)
    result = prune_to_flops(zoo.build_model(name), 0.3, shape)
    assert abs(result.achieved - 0.3) <= 0.01 and result.params_after < result.params_before
    with torch.no_grad():
        output = result.model(zoo.model_input(result.model, 2, shape))
    if name == DETECTOR:
        assert len(output) == 2 and set(output[0]) == {"boxes", "labels", "scores"}
        head = result.model.head.classification_head.module_list
        assert all(level[-1].out_channels == 91 * 6 for level in head)  # 91 classes x 6 anchors per level
    else:
        assert output["out"].shape == (2, 21, 64, 64)


def _scored_run(path, scores):
    from pytest_edgeprof.measurement import Accuracy, Latency
    from pytest_edgeprof.runs.saved import SavedCell, SavedRun

    cells = []
    for (name, batch), (key, score) in scores.items():
        accuracy = Accuracy(None, None, "data: 2 images", **{key: score})
        measurement = Measurement(Cell(name, "base", batch, (3, 64, 64)), "cpu", latency=Latency.of([0.01 * batch] * 6),
                                  accuracy=accuracy, cost=Cost(10, 5, 3, 12, "", zoo.task_of(name)))
        cells.append(SavedCell("test_inference", Measurement.from_extra_info(measurement.to_extra_info())))
    return SavedRun.of(path, cells)


def test_compare_limits_and_summary_read_a_tasks_own_score(tmp_path):
    from pytest_edgeprof.runs import compare, limits, summary

    a = _scored_run(tmp_path / "a.json", {(DETECTOR, 1): ("map", 0.40), (SEGMENTER, 1): ("miou", 0.60)})
    b = _scored_run(tmp_path / "b.json", {(DETECTOR, 1): ("map", 0.30), (SEGMENTER, 1): ("miou", 0.60)})
    broken = compare.regressions(a, b, compare.parse_fail_spec("map:-10%,miou:-10%"))
    assert [(r.cell_id, r.metric) for r in broken] == [(f"{DETECTOR}-base-b1-64x64", "map")]
    assert limits.recommend(a, "map").cell.model == DETECTOR and limits.recommend(a, "miou").cell.model == SEGMENTER
    table = "\n".join(summary.render(a, width=200))
    assert "mAP" in table and "0.400" in table and "mIoU" in table and "0.600" in table


def test_edgeprof_flops_says_how_a_detector_was_counted(capsys):
    from pytest_edgeprof.cli import main

    assert main(["flops", DETECTOR, SEGMENTER, "--shape", "64", "--json"]) == 0
    rows = {row["model"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[DETECTOR]["flops_method"] == "real-forward" and "random input" in rows[DETECTOR]["flops_note"]
    assert rows[SEGMENTER]["flops_method"] == "meta" and "flops_note" not in rows[SEGMENTER]


def test_a_timm_classifier_is_preprocessed_with_its_own_configuration():
    from torchvision.transforms import v2

    from pytest_edgeprof.models.accuracy import preprocessing

    steps = preprocessing("timm:vit_small_patch16_224", (3, 224, 224)).transforms
    resize, normalize = next(t for t in steps if isinstance(t, v2.Resize)), steps[-1]
    assert resize.size == [round(224 / 0.9)] and resize.interpolation == v2.InterpolationMode.BICUBIC
    assert normalize.mean == [0.5, 0.5, 0.5] and normalize.std == [0.5, 0.5, 0.5]

"""mAP and mIoU: known answers on generated boxes and masks, the evaluation folders, and a plugin run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy
import PIL.Image
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import box_iou

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.models.image_folder import parse_eval_data
from pytest_edgeprof.models.task_accuracy import coco_samples, mask_samples, mean_average_precision, mean_iou

SMALL = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.05", "--benchmark-min-rounds", "3"]
SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""
TRUTH = [{"boxes": torch.tensor([[0.0, 0, 100, 100], [200, 200, 260, 240]]), "labels": torch.tensor([1, 3])}]


def _detections(boxes: list[list[float]]) -> list[dict[str, torch.Tensor]]:
    return [{"boxes": torch.tensor(boxes), "scores": torch.ones(len(boxes)), "labels": torch.tensor([1, 3])}]


def test_perfect_detections_give_map_1():
    assert mean_average_precision(_detections(TRUTH[0]["boxes"].tolist()), TRUTH) == pytest.approx(1.0)


def test_shifted_boxes_give_the_map_their_iou_should():
    """Shifted by 27 px, the boxes overlap their truth with IoU 73/127 = 0.575: a match at the IoU
    thresholds 0.50 and 0.55 only, so 2 of COCO's 10 thresholds: mAP 0.2."""
    shifted = [[27.0, 0, 127, 100], [200 + 60 * 27 / 100, 200, 260 + 60 * 27 / 100, 240]]
    assert float(box_iou(torch.tensor(shifted[:1]), TRUTH[0]["boxes"][:1])) == pytest.approx(73 / 127)
    assert mean_average_precision(_detections(shifted), TRUTH) == pytest.approx(0.2)


def test_masks_give_the_miou_they_should():
    truth = torch.zeros(1, 8, 8, dtype=torch.long)
    truth[..., 4:] = 3
    assert mean_iou(truth.clone(), truth, 21) == pytest.approx(1.0)
    shifted = torch.zeros_like(truth)
    shifted[..., 2:] = 3  # class 0: 16 of 32 pixels; class 3: 32 of 48; absent classes do not count
    assert mean_iou(shifted, truth, 21) == pytest.approx((16 / 32 + 32 / 48) / 2)
    ignored = truth.clone()
    ignored[..., :2] = 255  # where predicted 0 is ignored, class 0 is predicted nowhere counted: IoU 0
    assert mean_iou(shifted, ignored, 21) == pytest.approx((0 + 32 / 48) / 2)


def test_without_torchmetrics_one_usage_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchmetrics", None)
    with pytest.raises(UsageError, match=r"optional extra: pip install 'pytest-edgeprof\[accuracy\]'"):
        mean_iou(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long), 2)


def _coco_folder(root: Path) -> Path:
    root.mkdir()
    PIL.Image.fromarray(numpy.full((50, 100, 3), 128, numpy.uint8)).save(root / "a.png")
    coco = {"images": [{"id": 7, "file_name": "a.png"}],
            "annotations": [{"image_id": 7, "bbox": [10, 10, 20, 20], "category_id": 1}]}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def _mask_folder(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in ("a", "b"):
        PIL.Image.fromarray(numpy.full((40, 40, 3), 90, numpy.uint8)).save(root / "images" / f"{name}.jpg")
        mask = numpy.zeros((40, 40), numpy.uint8)
        mask[:, 20:] = 15
        PIL.Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    return root


def test_coco_boxes_follow_the_image_to_the_cells_shape(tmp_path):
    root = parse_eval_data(str(_coco_folder(tmp_path / "coco")))
    [(image, target)] = list(coco_samples(root, (64, 64)))
    assert image.shape == (3, 64, 64) and 0 <= float(image.min()) and float(image.max()) <= 1
    assert target["boxes"].tolist() == [pytest.approx([6.4, 12.8, 19.2, 38.4])]  # x * 64/100, y * 64/50
    assert target["labels"].tolist() == [1]


def test_masks_follow_the_image_to_the_cells_shape(tmp_path):
    root = parse_eval_data(str(_mask_folder(tmp_path / "seg")))
    samples = list(mask_samples(root, (16, 16)))
    assert len(samples) == 2 and samples[0][0].shape == (3, 16, 16)
    assert samples[0][1].unique().tolist() == [0, 15] and samples[0][1][:, 8:].eq(15).all()


@given(st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=40))
@settings(max_examples=30)
def test_a_missing_evaluation_folder_is_one_usage_error(text):
    root = Path("/nonexistent-edgeprof") / text
    with pytest.raises(UsageError) as error:
        parse_eval_data(str(root))
    assert str(error.value).startswith(f"--eval-data {root}: no such folder; expected an ImageFolder (classifiers), ")


def test_bad_evaluation_folders_are_one_usage_error(tmp_path):
    root = _mask_folder(tmp_path / "seg")
    (root / "masks" / "b.png").unlink()
    with pytest.raises(UsageError, match="no mask masks/b.png for images/b.jpg"):
        parse_eval_data(str(root))
    coco = _coco_folder(tmp_path / "coco")
    (coco / "annotations.json").write_text('{"images": [{"id": 1}]}')
    with pytest.raises(UsageError, match="not COCO annotations"):
        parse_eval_data(str(coco))


@pytest.mark.parametrize("model, folder, key", [
    ("ssdlite320_mobilenet_v3_large", _coco_folder, "map"), ("lraspp_mobilenet_v3_large", _mask_folder, "miou"),
])
def test_a_tasks_accuracy_is_saved_and_budgeted(pytester, tmp_path, model, folder, key):
    pytester.makepyfile(SUITE)
    out = tmp_path / "run.json"
    data = folder(tmp_path / "data")
    result = pytester.runpytest(*SMALL, "--models", model, "--batch-sizes", "1", "--shapes", "64",
                                "--eval-data", str(data), "--budget", f"{key}=0.99", f"--benchmark-json={out}")
    result.assert_outcomes(failed=1)  # random weights stay below 0.99
    result.stdout.fnmatch_lines([f"*{'mAP' if key == 'map' else 'mIoU'}* < budget 0.99*"])
    info = json.loads(out.read_text())["benchmarks"][0]["extra_info"]
    assert 0 <= info[key] < 0.99 and info["eval_set"].startswith("data:") and "top1" not in info

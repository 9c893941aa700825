"""A detector's mAP and a segmenter's mIoU, through torchmetrics (the optional extra ``accuracy``).

Evaluation folders (``--eval-data``), checked without torch by ``models/image_folder.py``:

* detection: ``DIR/annotations.json`` in COCO's form (``images`` with ``id`` and ``file_name``,
  ``annotations`` with ``image_id``, ``bbox`` as [x, y, width, height] in pixels and ``category_id``,
  the model's label index: torchvision's COCO detectors use COCO's category ids), the images at
  ``DIR/<file_name>``. mAP is COCO's mAP@[.5:.95] (pycocotools' matching, through torchmetrics).
* segmentation: ``DIR/images/<name>.<ext>`` and ``DIR/masks/<name>.png``, each mask pixel its class
  index (255: ignored). mIoU is the mean over the classes present in the masks or the predictions.

Each image is resized to the cell's shape (its boxes and mask with it), so the score is the one at
the shape the cell measured. A detector gets images in [0, 1] (its transform normalises them); a
segmenter gets them normalised with its weights' mean and std.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import PIL.Image
import torch
import torchvision
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as F

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Accuracy
from pytest_edgeprof.models.image_folder import IMAGE_SUFFIXES

ACCURACY_EXTRA = "pip install 'pytest-edgeprof[accuracy]'"
IGNORED_CLASS = 255
BATCH = 8


def _torchmetrics() -> Any:
    try:
        import torchmetrics
        import torchmetrics.classification
        import torchmetrics.detection
    except ImportError:
        raise UsageError(f"mAP and mIoU need torchmetrics and pycocotools, an optional extra: {ACCURACY_EXTRA}") from None
    return torchmetrics


def mean_average_precision(predictions: list[dict[str, Tensor]], targets: list[dict[str, Tensor]]) -> float:
    """COCO's mAP@[.5:.95] of detections (``boxes`` x1y1x2y2, ``scores``, ``labels``) against targets."""
    metric = _torchmetrics().detection.MeanAveragePrecision(iou_type="bbox")
    metric.update(predictions, targets)
    return float(metric.compute()["map"])


def mean_iou(predicted: Tensor, target: Tensor, num_classes: int) -> float:
    """Mean intersection over union of class-index masks, over the classes present in either."""
    metric = _torchmetrics().classification.MulticlassJaccardIndex(
        num_classes=num_classes, ignore_index=IGNORED_CLASS, average="macro")
    return float(metric(predicted, target))


def evaluate_task(model: nn.Module, task: str, root: Path, input_shape: tuple[int, int, int], *,
                  limit: int | None = None, device: str = "cpu", model_name: str = "") -> Accuracy:
    """mAP of a detector or mIoU of a segmenter on ``root`` at the cell's shape (``model`` in eval mode)."""
    with torch.inference_mode():
        if task == "detection":
            return _detection_score(model, root, input_shape[1:], limit, device)
        return _segmentation_score(model, root, input_shape[1:], limit, device, _normalisation(model_name))


def _detection_score(model: nn.Module, root: Path, size: tuple[int, int], limit: int | None, device: str) -> Accuracy:
    predicted: list[dict[str, Tensor]] = []
    targets: list[dict[str, Tensor]] = []
    for images, batch_targets in _batches(coco_samples(root, size, limit)):
        predicted += [{k: v.cpu() for k, v in out.items()} for out in model([image.to(device) for image in images])]
        targets += batch_targets
    return Accuracy(None, None, _eval_set(root, len(targets)), map=round(mean_average_precision(predicted, targets), 4))


def _segmentation_score(model: nn.Module, root: Path, size: tuple[int, int], limit: int | None, device: str,
                        normalisation: tuple[list[float], list[float]]) -> Accuracy:
    predicted: list[Tensor] = []
    truths: list[Tensor] = []
    classes = 0
    for images, masks in _batches(mask_samples(root, size, limit)):
        logits = model(F.normalize(torch.stack(images), *normalisation).to(device))["out"]
        predicted.append(logits.argmax(1).cpu())
        truths.append(torch.stack(masks))
        classes = logits.shape[1]
    score = mean_iou(torch.cat(predicted), torch.cat(truths), classes)
    return Accuracy(None, None, _eval_set(root, sum(len(m) for m in predicted)), miou=round(score, 4))


def _batches(samples: Iterator[tuple[Tensor, Any]]) -> Iterator[tuple[list[Tensor], list[Any]]]:
    images: list[Tensor] = []
    labels: list[Any] = []
    for image, label in samples:
        images.append(image)
        labels.append(label)
        if len(images) == BATCH:
            yield images, labels
            images, labels = [], []
    if images:
        yield images, labels


def coco_samples(root: Path, size: tuple[int, int], limit: int | None = None) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
    """Each image of ``root/annotations.json`` resized to ``size`` (H, W), in [0, 1], with its boxes scaled."""
    coco = json.loads((root / "annotations.json").read_text())
    boxes: dict[Any, list[dict[str, Any]]] = {}
    for annotation in coco.get("annotations", []):
        boxes.setdefault(annotation["image_id"], []).append(annotation)
    for entry in coco["images"][:limit]:
        image = _read(root / entry["file_name"])
        height, width = image.shape[1:]
        scale = torch.tensor([size[1] / width, size[0] / height] * 2)
        xywh = torch.tensor([a["bbox"] for a in boxes.get(entry["id"], [])], dtype=torch.float32).reshape(-1, 4)
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1) * scale
        labels = torch.tensor([a["category_id"] for a in boxes.get(entry["id"], [])], dtype=torch.int64)
        yield F.resize(image, list(size), antialias=True), {"boxes": xyxy, "labels": labels}


def mask_samples(root: Path, size: tuple[int, int], limit: int | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """Each image of ``root/images`` in [0, 1] and its ``root/masks`` mask, both resized to ``size``."""
    images = sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for path in images[:limit]:
        mask = torch.from_numpy(_array(root / "masks" / f"{path.stem}.png")).long()[None]
        mask = F.resize(mask, list(size), interpolation=F.InterpolationMode.NEAREST)[0]
        yield F.resize(_read(path), list(size), antialias=True), mask


def _read(path: Path) -> Tensor:
    return F.to_dtype(F.pil_to_tensor(_open(path).convert("RGB")), torch.float32, scale=True)


def _array(path: Path) -> Any:
    import numpy

    return numpy.array(_open(path))


def _open(path: Path) -> PIL.Image.Image:
    try:
        return PIL.Image.open(path)
    except (OSError, PIL.Image.DecompressionBombError) as error:
        raise UsageError(f"cannot read image {path}: {str(error).splitlines()[0]}; expected an image file") from None


def _normalisation(model_name: str) -> tuple[list[float], list[float]]:
    preset = torchvision.models.get_model_weights(model_name).DEFAULT.transforms()
    return list(preset.mean), list(preset.std)


def _eval_set(root: Path, images: int) -> str:
    return f"{root.resolve().name or root}: {images} images"

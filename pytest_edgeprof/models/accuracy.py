"""Top-1 / top-5 accuracy of a model on an image folder or on any iterable of (images, labels) batches.

The image folder is laid out like ImageNet's validation set in torchvision's ImageFolder form: one
sub-folder per class holding that class's images (``val/n01440764/ILSVRC2012_val_00000293.JPEG``).

Which class index each folder is: with a class-index file, what the file says; without one, the
folders sorted by name are classes 0, 1, 2, ... (torchvision's ImageFolder rule, which for ImageNet's
synset folders gives the standard ImageNet indices). The class-index file is JSON mapping each class
index to its folder name, either ImageNet's ``imagenet_class_index.json`` form
``{"0": ["n01440764", "tench"], ...}`` (the first element of each list is the folder) or plainly
``{"0": "n01440764", ...}``. Folders the file does not name are an error, not silently skipped.

Preprocessing is the model's weights' own (torchvision's ``ImageClassification`` preset): resize the
shorter side, center-crop to the cell's input shape, scale to [0, 1], normalize with the weights'
mean and std. The resize keeps the weights' resize-to-crop ratio (256/224 for most models), so a
160 x 160 cell resizes to 183 then crops 160; for an H x W cell the shorter side is resized to
max(H, W) times that ratio, so the crop never needs padding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PIL.Image
import torch
import torchvision
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Accuracy
from pytest_edgeprof.models.image_folder import labelled_images, round_robin, suffixes_text
from pytest_edgeprof.models.zoo import TIMM_PREFIX, is_timm, resolve_model_name


@dataclass(frozen=True)
class EvalResult:
    top1: float  # percent of images whose label is the model's first guess
    top5: float  # percent of images whose label is among its five first guesses
    images: int
    eval_set: str  # what was evaluated, e.g. "val: first 500 of 50000 images (limit 500, ...), 1000 classes"

    def record(self) -> Accuracy:
        """The cell's accuracy part, in percent to 4 decimals."""
        return Accuracy(round(self.top1, 4), round(self.top5, 4), self.eval_set)


def evaluate(
    model: nn.Module | Callable[[Tensor], Tensor],
    loader: Iterable[tuple[Tensor, Tensor]],
    *,
    device: str = "cpu",
    eval_set: str = "",
    progress: bool = False,
) -> EvalResult:
    """Top-1 and top-5 of ``model`` over ``loader``: a module (put in eval mode for the pass, then
    restored, its inputs moved to ``device``), or any function from a float32 CPU batch to scores
    (``Deployed.predict``: a deployment that prepares its inputs itself)."""
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    else:
        device = "cpu"
    top1 = top5 = images = 0
    batches = _progress(loader, progress, f"evaluating {eval_set}".strip())
    try:
        with torch.inference_mode():
            for inputs, labels in batches:
                logits = model(inputs.to(device))
                labels = labels.to(logits.device)
                _check_labels(labels, logits.shape[-1])
                guesses = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
                hits = guesses == labels.unsqueeze(-1)
                top1 += int(hits[:, 0].sum())
                top5 += int(hits.any(dim=-1).sum())
                images += len(labels)
    finally:
        if isinstance(model, nn.Module):
            model.train(was_training)
    if not images:
        raise UsageError(f"evaluation set {eval_set or '(unnamed)'} has no images")
    return EvalResult(top1=100 * top1 / images, top5=100 * top5 / images, images=images, eval_set=eval_set)


def _check_labels(labels: Tensor, classes: int) -> None:
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise UsageError(
            f"label {int(labels.max())} is outside the model's {classes} classes; "
            "give a class-index file that maps the folders to the model's class indices"
        )


def _progress(iterable: Iterable[Any], enabled: bool, description: str) -> Iterable[Any]:
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=description, unit="batch", file=sys.stderr, leave=False)


# --- image folders ---------------------------------------------------------------------------------


def image_folder_loader(
    root: Path,
    model_name: str,
    input_shape: tuple[int, int, int],
    *,
    limit: int | None = None,
    batch_size: int = 32,
    class_index: Path | None = None,
    num_workers: int = 0,
    option: str = "--eval-data",
) -> tuple[DataLoader, str]:
    """A loader over an ImageFolder with ``model_name``'s preprocessing at ``input_shape``, and its eval_set text.

    ``limit`` takes the first N images in a fixed order that goes round the classes (the first image
    of every class, then the second, ...), so a quick look still covers many classes; the eval_set
    text says so. ``class_index`` defaults to ``root/class_index.json`` when that file exists.
    ``option`` is how errors name the folder (the option that gave it).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"--eval-limit {limit!r}: expected a positive number of images")
    root = Path(root).expanduser()
    by_class = labelled_images(root, class_index, option)
    total = sum(len(images) for images in by_class)
    samples = round_robin(by_class)[:limit] if limit else [s for images in by_class for s in images]
    dataset = _ImageList(samples, preprocessing(model_name, input_shape))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return loader, _eval_set_text(root, len(samples), total, len(by_class), limit)


def preprocessing(model_name: str, input_shape: tuple[int, int, int]) -> v2.Compose:
    """The model's weights' transforms (resize, center crop, normalize), for an input of ``input_shape``."""
    ratio, interpolation, mean, std = _preset(resolve_model_name(model_name))
    height, width = input_shape[1], input_shape[2]
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(round(max(height, width) * ratio), interpolation=interpolation, antialias=True),
            v2.CenterCrop((height, width)),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=mean, std=std),
        ]
    )


def _preset(name: str) -> tuple[float, v2.InterpolationMode, list[float], list[float]]:
    """(resize / crop ratio, interpolation, mean, std) of the model's weights; a timm model's from its
    pretrained configuration (``crop_pct`` is crop / resize)."""
    if is_timm(name):
        import timm

        config = timm.models.get_pretrained_cfg(name[len(TIMM_PREFIX):])
        if config is None:
            raise UsageError(f"--eval-data: {name} has no pretrained configuration to read its preprocessing from")
        return 1 / config.crop_pct, v2.InterpolationMode(config.interpolation), list(config.mean), list(config.std)
    preset = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    crop = preset.crop_size[0]
    resize = preset.resize_size[0] if preset.resize_size else crop
    return resize / crop, preset.interpolation, list(preset.mean), list(preset.std)


class _ImageList(Dataset):
    def __init__(self, samples: list[tuple[Path, int]], transform: v2.Compose) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        try:
            image = torchvision.datasets.folder.pil_loader(str(path))
        except (OSError, PIL.Image.DecompressionBombError) as error:
            reason = "Pillow cannot identify it" if isinstance(error, PIL.UnidentifiedImageError) else str(error).splitlines()[0]
            raise UsageError(f"cannot read image {path}: {reason}; expected an image file ({suffixes_text()}), "
                             "or remove it from the folder") from None
        return self.transform(image), label


def _eval_set_text(root: Path, used: int, total: int, classes: int, limit: int | None) -> str:
    name = root.resolve().name or str(root)
    if limit and used < total:
        return f"{name}: first {used} of {total} images (limit {limit}, round-robin over classes), {classes} classes"
    return f"{name}: {total} images, {classes} classes"

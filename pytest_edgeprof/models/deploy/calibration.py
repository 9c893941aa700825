"""The images int8 calibration runs through: an image folder (``--calib-data``), or generated ones.

Static quantization fixes each activation's scale from the ranges these images produce, so the
quantized model is only as good as they are like the real inputs. Generated images make a model
that runs at int8 speed and size, but whose accuracy means nothing; the plugin warns so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

CALIBRATION_IMAGES = 32  # enough for min/max and histogram observers to settle on CNN activations
GENERATED_SEED = 0


def image_shape(batch: torch.Tensor) -> tuple[int, int, int]:
    """(C, H, W) of a batch of images [B, C, H, W]."""
    _, channels, height, width = batch.shape
    return channels, height, width


@dataclass(frozen=True)
class Calibration:
    data: Path | None = None  # an ImageFolder; None: the given images, else generated ones
    images: int = CALIBRATION_IMAGES
    given: torch.Tensor | None = field(default=None, compare=False)  # images at hand (a notebook's, a test's)

    @property
    def generated(self) -> bool:
        return self.data is None and self.given is None

    def identity(self) -> str:
        """What the quantized model saw, for the cache key and the saved ``quantization`` text."""
        if self.given is not None:
            digest = hashlib.sha256(self.given.contiguous().numpy().tobytes()).hexdigest()[:16]
            return f"{len(self.given)} given images ({digest})"
        if self.data is None:
            return f"{self.images} generated images (seed {GENERATED_SEED})"
        return f"first {self.images} images of {self.data.resolve()}"

    def batches(self, model_name: str, input_shape: tuple[int, int, int], batch_size: int = 8) -> list[torch.Tensor]:
        """The calibration images at ``input_shape``, float32 on the CPU, with ``model_name``'s preprocessing."""
        if self.given is not None:
            return list(self.given.float().split(batch_size))
        if self.data is None:
            generator = torch.Generator().manual_seed(GENERATED_SEED)
            images = torch.randn(self.images, *input_shape, generator=generator)
            return list(images.split(batch_size))
        from pytest_edgeprof.models.accuracy import image_folder_loader

        loader, _ = image_folder_loader(self.data, model_name, input_shape, limit=self.images, batch_size=batch_size,
                                        option="--calib-data")
        return [images for images, _ in loader]

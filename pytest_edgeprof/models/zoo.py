"""Models by name: torchvision's classification, detection and segmentation models and timm's
(``timm:NAME``), the task each one does, the weights policy, and example inputs per task.

Detection models take a list of images and run their own transform (normalise, pad to a multiple of
``size_divisible``, batch) and post-processing (box decoding, NMS) inside ``forward``. Their transform's
resize is switched off (:class:`KeepSizeTransform`), so the network sees the cell's shape, padded:
:func:`network_input_shape` says which.
"""

from __future__ import annotations

import difflib
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from pytest_edgeprof.errors import UsageError, first_line

TIMM_PREFIX = "timm:"
TIMM_EXTRA = "pip install 'pytest-edgeprof[timm]'"


@cache
def model_names_by_task() -> dict[str, tuple[str, ...]]:
    """torchvision's model names per task (video, optical flow and quantized models are not measured)."""
    return {
        "classification": tuple(sorted(torchvision.models.list_models(module=torchvision.models))),
        "detection": tuple(sorted(torchvision.models.list_models(module=torchvision.models.detection))),
        "segmentation": tuple(sorted(torchvision.models.list_models(module=torchvision.models.segmentation))),
    }


def classification_model_names() -> tuple[str, ...]:
    """Every torchvision classification model name (no detection, segmentation, video, ...)."""
    return model_names_by_task()["classification"]


def task_of(name: str) -> str:
    """``classification``, ``detection`` or ``segmentation`` for a model name; a timm model or a user's
    own module (any other name) is taken as a classifier."""
    for task, names in model_names_by_task().items():
        if name in names:
            return task
    return "classification"


def resolve_model_name(name: str) -> str:
    """``name`` as torchvision (or timm, for ``timm:NAME``) spells it, else ``UsageError`` with the closest
    names across every task."""
    cleaned = name.strip()
    if cleaned.lower().startswith(TIMM_PREFIX):
        return TIMM_PREFIX + _resolve_timm_name(cleaned[len(TIMM_PREFIX):].strip())
    names = tuple(n for task_names in model_names_by_task().values() for n in task_names)
    if cleaned in names:
        return cleaned
    if cleaned.lower() in names:
        return cleaned.lower()
    close = difflib.get_close_matches(cleaned.lower(), names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()"
    raise UsageError(f"unknown model {name!r}: not a torchvision classification, detection or segmentation model "
                     f"(nor timm:NAME); {hint}")


def _resolve_timm_name(name: str) -> str:
    timm = _timm()
    names = timm.list_models()
    if name in names:
        return name
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(TIMM_PREFIX + c for c in close)}?" if close else "see timm.list_models()"
    raise UsageError(f"unknown model {TIMM_PREFIX + name!r}: not a timm model; {hint}")


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise UsageError(f"timm: models need timm, an optional extra: {TIMM_EXTRA}") from None
    return timm


def is_timm(name: str) -> bool:
    return name.startswith(TIMM_PREFIX)


RANDOM_WEIGHTS = ("none", "random")


def build_model(name: str, weights: str | None = None, device: str = "cpu") -> nn.Module:
    """A torchvision (or ``timm:``) model in eval mode on ``device``, never downloading anything.

    ``weights`` is None/"random" (random initialisation, seeded so runs repeat), a weights name of the
    model ("DEFAULT", "IMAGENET1K_V2", ...) that is already in the torch cache, or a path to a state
    dict. Latency, memory, energy and FLOPs do not depend on the values, only accuracy does.
    """
    name = resolve_model_name(name)
    state_dict = load_weights(name, weights) if weights and weights.lower() not in RANDOM_WEIGHTS else None
    torch.manual_seed(0)
    model = architecture(name)
    if state_dict is not None:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("AuxLogits.") and not k.startswith("aux")}
        _load_into(model, state_dict, weights or "", name)
    return model.eval().to(device)


def architecture(name: str, **size_kwargs: Any) -> nn.Module:
    """The model ``name`` (resolved) with random weights, in train mode, on the default device (build it under
    ``torch.device("meta")`` for none); a detection model's transform keeps the input's size."""
    if is_timm(name):
        return _timm().create_model(name[len(TIMM_PREFIX):], pretrained=False, **size_kwargs)
    with warnings.catch_warnings():  # googlenet/inception warn that weights=None changes their init
        warnings.simplefilter("ignore", FutureWarning)
        model = torchvision.models.get_model(name, weights=None, **_builder_kwargs(name), **size_kwargs)
    if takes_image_list(model):
        # a class swap keeps the transform's state and the model picklable (--isolate), as a patched method would not
        model.transform.__class__ = KeepSizeTransform
    return model


def _builder_kwargs(name: str) -> dict[str, Any]:
    if name in ("googlenet", "inception_v3"):
        return {"aux_logits": False, "init_weights": True}
    if task_of(name) != "classification":  # their default backbone weights would be downloaded
        return {"weights_backbone": None}
    return {}


class KeepSizeTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform without its resize: normalising, padding and batching stay,
    so the network sees the cell's shape (padded to ``size_divisible``) rather than the training size."""

    def resize(self, image: torch.Tensor, target: Any = None) -> tuple[torch.Tensor, Any]:
        return image, target


def takes_image_list(model: nn.Module) -> bool:
    """A torchvision detection model: it takes a list of images and transforms them itself."""
    return isinstance(getattr(model, "transform", None), GeneralizedRCNNTransform)


def network_input_shape(model: nn.Module, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The shape the network itself sees for a cell's input: a detection transform pads it."""
    transform = getattr(model, "transform", None)
    if not isinstance(transform, GeneralizedRCNNTransform):  # as takes_image_list, but mypy sees the type
        return input_shape
    divisor = transform.size_divisible
    channels, height, width = input_shape
    return channels, -(-height // divisor) * divisor, -(-width // divisor) * divisor


def _load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], weights: str, name: str) -> None:
    """``model.load_state_dict``, whose many-line error becomes one line naming what does not fit."""
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, TypeError, AttributeError) as exc:
        wanted, given = model.state_dict().keys(), state_dict.keys()
        missing, unexpected = [k for k in wanted if k not in given], [k for k in given if k not in wanted]
        if missing or unexpected:
            what = f"{len(missing)} of its keys missing (e.g. {missing[0]!r})" if missing else ""
            what += ", " if missing and unexpected else ""
            what += f"{len(unexpected)} foreign keys (e.g. {unexpected[0]!r})" if unexpected else ""
        else:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            what = next((line for line in lines if "size mismatch" in line), lines[-1] if lines else type(exc).__name__)
        raise UsageError(f"--weights {weights}: not a state dict of {name}: {what}") from None


def check_weights(model_name: str, weights: str | None) -> None:
    """``UsageError`` now if ``weights`` cannot be loaded for the model later (nothing is read)."""
    if weights and weights.lower() not in RANDOM_WEIGHTS:
        _weights_file(resolve_model_name(model_name), weights)


def load_weights(model_name: str, weights: str) -> dict[str, torch.Tensor]:
    """A state dict from a file path or from the torch cache; ``UsageError`` rather than a download."""
    return _load_state_dict(_weights_file(model_name, weights))


def _weights_file(model_name: str, weights: str) -> Path:
    """The file ``weights`` names: a state dict's path, or the torch cache's file of a weights name."""
    path = Path(weights).expanduser()
    if path.suffix in (".pth", ".pt", ".bin") or path.exists():
        if not path.is_file():
            raise UsageError(f"--weights {weights}: no such file; expected random, a weights name such as DEFAULT, or a state dict's path")
        return path
    if is_timm(model_name):
        raise UsageError(f"--weights {weights}: {model_name} takes random weights or a state dict's path "
                         "(timm's weights names are downloads)")
    enum = torchvision.models.get_model_weights(model_name)
    try:
        entry = enum[weights.upper()] if weights.upper() != "DEFAULT" else enum.DEFAULT
    except KeyError:
        names = [m for m in enum.__members__ if m != "DEFAULT"]
        accepted = ", ".join(["random", "DEFAULT", *names, "a path to a state dict"])
        raise UsageError(f"--weights {weights}: not a weights name of {model_name}; accepted: {accepted}") from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name
    if not cached.is_file():
        raise UsageError(
            f"--weights {weights}: {model_name}'s {entry} weights are not in the torch cache ({cached}) and "
            "edgeprof never downloads; put the file there or pass its path"
        )
    return cached


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: name it, do not show torch's traceback
        raise UsageError(f"cannot read weights from {path} ({_load_failure(exc)}); "
                         "expected a file of torch.save(model.state_dict())") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"{path} holds a {type(loaded).__name__}, not a state dict; expected a file of torch.save(model.state_dict())")
    return loaded


def _load_failure(exc: Exception) -> str:
    """Why torch.load refused a file, in a few words. Its weights-only message is a page long and
    suggests ``weights_only=False``, which would run whatever the file holds: edgeprof never does."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        detail = next((line.strip() for line in text.split("WeightsUnpickler error:", 1)[1].splitlines() if line.strip()), "")
        return f"not a weights-only torch file: {detail.split('. ')[0]}"
    if isinstance(exc, EOFError):
        return "empty or cut short"
    return first_line(exc, with_type=True)


ModelInput = torch.Tensor | list[torch.Tensor]


def example_input(batch_size: int, input_shape: tuple[int, int, int], device: str = "cpu") -> torch.Tensor:
    """A random input batch, seeded so every run feeds the same values."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn((batch_size, *input_shape), generator=generator).to(device)


def model_input(model: nn.Module, batch_size: int, input_shape: tuple[int, int, int], device: str = "cpu") -> ModelInput:
    """:func:`example_input` as the model takes it: a detection model a list of ``batch_size`` images in
    [0, 1] (its transform normalises them), any other model the batch tensor."""
    if not takes_image_list(model):
        return example_input(batch_size, input_shape, device)
    generator = torch.Generator().manual_seed(0)
    return list(torch.rand((batch_size, *input_shape), generator=generator).to(device).unbind(0))


def input_bytes(example: ModelInput) -> int:
    """The bytes of a batch or a list of images (a tensor's or a numpy array's ``nbytes``)."""
    tensors = example if isinstance(example, list) else [example]
    return sum(t.nbytes for t in tensors)


def reference_input_shape(name: str) -> tuple[int, int, int]:
    """The model's own input size: the center crop of its default weights' preprocessing (224 for most
    classifiers), a segmentation model's resize (520), a detection model's transform size (800, 320)."""
    name = resolve_model_name(name)
    if is_timm(name):
        config = _timm().models.get_pretrained_cfg(name[len(TIMM_PREFIX):])
        return tuple(config.input_size) if config is not None else (3, 224, 224)
    if task_of(name) == "detection":
        side = _detection_size(name)
        return (3, side, side)
    keywords = torchvision.models.get_model_weights(name).DEFAULT.transforms.keywords
    crop = keywords.get("crop_size", keywords.get("resize_size", 224))
    side = crop[0] if isinstance(crop, (list, tuple)) else crop
    return (3, int(side), int(side))


@cache
def _detection_size(name: str) -> int:
    """The side a square image is resized to by the model's own transform (its ``min_size``, or its
    fixed size), read from the architecture built on the meta device."""
    with torch.device("meta"):
        transform = torchvision.models.get_model(name, weights=None, weights_backbone=None).transform
    if transform.fixed_size:
        return int(transform.fixed_size[0])
    return int(min(transform.min_size[-1], transform.max_size))

"""Models by name: torchvision's classification models, the weights policy, example inputs."""

from __future__ import annotations

import difflib
import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torchvision
from torch import nn

from pytest_edgeprof.errors import UsageError, first_line


@lru_cache(maxsize=None)
def classification_model_names() -> tuple[str, ...]:
    """Every torchvision classification model name (no detection, segmentation, video, ...)."""
    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def resolve_model_name(name: str) -> str:
    """Return ``name`` if it is a torchvision classification model, else raise with the closest names."""
    names = classification_model_names()
    cleaned = name.strip()
    if cleaned in names:
        return cleaned
    if cleaned.lower() in names:
        return cleaned.lower()
    close = difflib.get_close_matches(cleaned.lower(), names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()"
    raise UsageError(f"unknown model {name!r}: not a torchvision classification model; {hint}")


RANDOM_WEIGHTS = ("none", "random")


def build_model(name: str, weights: str | None = None, device: str = "cpu") -> nn.Module:
    """A torchvision classification model in eval mode on ``device``, never downloading anything.

    ``weights`` is None/"random" (random initialisation, seeded so runs repeat), a weights name of the
    model ("DEFAULT", "IMAGENET1K_V2", ...) that is already in the torch cache, or a path to a state
    dict. Latency, memory, energy and FLOPs do not depend on the values, only accuracy does.
    """
    name = resolve_model_name(name)
    state_dict = load_weights(name, weights) if weights and weights.lower() not in RANDOM_WEIGHTS else None
    torch.manual_seed(0)
    with warnings.catch_warnings():  # googlenet/inception warn that weights=None changes their init
        warnings.simplefilter("ignore", FutureWarning)
        extra = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        model = torchvision.models.get_model(name, weights=None, **extra)
    if state_dict is not None:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("AuxLogits.") and not k.startswith("aux")}
        _load_into(model, state_dict, weights or "", name)
    return model.eval().to(device)


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


def example_input(batch_size: int, input_shape: tuple[int, int, int], device: str = "cpu") -> torch.Tensor:
    """A random input batch, seeded so every run feeds the same values."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn((batch_size, *input_shape), generator=generator).to(device)


def reference_input_shape(name: str) -> tuple[int, int, int]:
    """The model's own input size: the center crop of its default weights' preprocessing (224 for most)."""
    name = resolve_model_name(name)
    weights = torchvision.models.get_model_weights(name).DEFAULT
    crop = weights.transforms.keywords.get("crop_size", 224)
    side = crop[0] if isinstance(crop, (list, tuple)) else crop
    return (3, int(side), int(side))

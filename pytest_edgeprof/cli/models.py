"""What layers and capacity share: the model MODEL --variant names, checked on its device before anything is built."""

from __future__ import annotations

import argparse


def model_modules(args: argparse.Namespace) -> list[str]:
    """What building MODEL --variant imports: torch, torchvision, and torch-pruning for a pruned variant."""
    pruned = ["pytest_edgeprof.models.prune.cache", "torch_pruning"] if args.variant != "base" else []
    return ["pytest_edgeprof.measure.flops", "pytest_edgeprof.models.variants", *pruned]


def model_on_device(args: argparse.Namespace):  # -> (variants.ModelRef, DeviceProfile, shape)
    """MODEL, --weights, --variant, --device and --shape (default: the model's own size), checked before
    anything is built or run: the weights can be found, and the model takes the shape (on meta tensors)."""
    from pytest_edgeprof.device import resolve_device
    from pytest_edgeprof.measure.flops import check_model_input
    from pytest_edgeprof.models.variants import ModelRef
    from pytest_edgeprof.models.zoo import check_weights, reference_input_shape, resolve_model_name

    name = resolve_model_name(args.model)
    check_weights(name, args.weights)
    shape = args.shape or reference_input_shape(name)
    check_model_input(name, shape)
    profile = resolve_device(args.device)
    return ModelRef(name, args.weights, args.variant), profile, shape

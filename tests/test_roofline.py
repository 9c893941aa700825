"""The per-kernel roofline: the kernels a forward runs, their FLOPs and bytes, the time, the fit."""

from __future__ import annotations

import pytest
import torchvision
from torch import nn

from pytest_edgeprof.measure.flops import count_cost
from pytest_edgeprof.measure.roofline import KINDS, Observation, RooflineEfficiency, bounds_s, fit, kernels, predict

BOUND = RooflineEfficiency(dict.fromkeys(KINDS, 1.0), 0.0, "bound")


def conv_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3, groups=8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_each_kernel_is_seen_once_with_its_kind_and_layer_and_views_are_not_kernels():
    found = kernels(conv_net(), (3, 12, 12), batch_size=2)
    assert [(k.op, k.kind, k.layer) for k in found] == [
        ("convolution", "conv", "0"), ("native_batch_norm", "elementwise", "1"), ("relu_", "elementwise", "2"),
        ("convolution", "depthwise", "3"), ("mean", "pool", "4"), ("addmm", "linear", "6"),
    ]  # Flatten's view and Linear's transpose of its weight run no kernel


def test_a_convolution_moves_its_input_weights_bias_and_output():
    (conv,) = kernels(nn.Conv2d(3, 8, 3), (3, 12, 12), batch_size=2)
    elements = 2 * 3 * 12 * 12 + 8 * 3 * 3 * 3 + 8 + 2 * 8 * 10 * 10
    assert conv.elements == elements
    assert conv.bytes("fp32") == 4 * elements and conv.bytes("fp16") == 2 * elements and conv.bytes("int8") == elements
    assert conv.flops == 2 * (2 * 8 * 10 * 10 * 3 * 3 * 3)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "densenet121"])
def test_the_kernels_flops_add_up_to_the_models(name):
    model = torchvision.models.get_model(name)
    assert sum(k.flops for k in kernels(model, (3, 64, 64), 2)) == count_cost(model, (3, 64, 64), 2).flops


def test_a_kernel_takes_the_longer_of_its_compute_and_its_memory_time_plus_a_launch():
    (conv,) = kernels(nn.Conv2d(3, 8, 3), (3, 12, 12), batch_size=2)
    compute_bound = predict([conv], "fp32", flops_per_s=1e6, bytes_per_s=1e12, efficiency=BOUND)
    assert compute_bound.total_s == pytest.approx(conv.flops / 1e6)
    memory_bound = predict([conv], "fp32", flops_per_s=1e12, bytes_per_s=1e6, efficiency=BOUND)
    assert memory_bound.total_s == pytest.approx(conv.bytes("fp32") / 1e6)
    half = RooflineEfficiency({**BOUND.per_kind, "conv": 0.5}, 1e-3, "test")
    slowed = predict([conv], "fp32", flops_per_s=1e6, bytes_per_s=1e12, efficiency=half)
    assert slowed.total_s == pytest.approx(2 * conv.flops / 1e6 + 1e-3) and slowed.busy_s == pytest.approx(2 * conv.flops / 1e6)


def test_fit_recovers_the_efficiencies_and_launch_cost_the_times_were_made_with():
    truth = {"conv": 0.6, "depthwise": 0.1, "linear": 0.8, "pool": 0.3, "elementwise": 0.25}
    launch = 20e-6
    observations = []
    for name in ("resnet18", "mobilenet_v3_small", "squeezenet1_1", "efficientnet_b0"):
        for batch in (1, 4):
            found = kernels(torchvision.models.get_model(name), (3, 96, 96), batch)
            by_kind = bounds_s(found, "fp32", 50e9, 10e9)
            made = sum(seconds / truth[kind] for kind, seconds in by_kind.items()) + launch * len(found)
            observations.append(Observation(by_kind, len(found), made))
    fitted = fit(observations, "synthetic")
    assert fitted.per_kind == pytest.approx(truth, rel=1e-6) and fitted.launch_s == pytest.approx(launch, rel=1e-6)
    assert fitted.basis == "synthetic"

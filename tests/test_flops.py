"""FLOPs / MACs / params counted on meta tensors, checked against torchvision's own metadata."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.flops import count_cost, count_model_cost
from pytest_edgeprof.models.zoo import reference_input_shape

# The study's three models, then one or two of every other family, covering: attention (vit, swin,
# maxvit), input sizes other than 224 (inception_v3, efficientnet, swin_v2), grouped and depthwise
# convolutions, and RegNet, whose builder cannot run on the meta device.
SPREAD = [
    "vgg16",
    "resnet50",
    "mobilenet_v3_large",
    "alexnet",
    "convnext_tiny",
    "densenet121",
    "efficientnet_b3",
    "googlenet",
    "inception_v3",
    "maxvit_t",
    "mnasnet1_0",
    "regnet_x_400mf",
    "resnext50_32x4d",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x0_5",
    "squeezenet1_1",
    "swin_t",
    "swin_v2_t",
    "vit_b_32",
]


def torchvision_gmacs(name: str) -> float:
    """GMACs per image as torchvision publishes them (``_ops``, rounded to 3 decimals), no download."""
    return torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]


@pytest.mark.parametrize("name", SPREAD)
def test_macs_per_image_match_torchvision_metadata(name: str) -> None:
    cost = count_model_cost(name)
    published = torchvision_gmacs(name)
    # _ops is rounded to 3 decimals, so compare at that rounding: stricter than 1 % except below
    # 0.05 GMACs, where the rounding itself exceeds 1 % (shufflenet_v2_x0_5: 0.0405 counted, 0.040 published).
    assert round(cost.macs / 1e9, 3) == published
    assert cost.input_shape == reference_input_shape(name)
    assert cost.batch_size == 1


def test_study_models_at_224_give_the_published_figures() -> None:
    gmacs = {name: round(count_model_cost(name, (3, 224, 224)).macs / 1e9, 2) for name in ("vgg16", "resnet50", "mobilenet_v3_large")}
    assert gmacs == {"vgg16": 15.47, "resnet50": 4.09, "mobilenet_v3_large": 0.22}


def test_params_are_the_models_parameter_count() -> None:
    model = torchvision.models.resnet18()
    assert count_model_cost("resnet18").params == sum(p.numel() for p in model.parameters()) == 11_689_512


def test_flops_are_twice_macs() -> None:
    cost = count_model_cost("mobilenet_v3_small", (3, 64, 64), batch_size=2)
    assert cost.flops == 2 * cost.macs > 0


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "vit_b_32"])
def test_flops_scale_with_batch(name: str) -> None:
    shape = (3, 224, 224) if name.startswith("vit") else (3, 64, 64)
    one = count_model_cost(name, shape, batch_size=1)
    eight = count_model_cost(name, shape, batch_size=8)
    assert (eight.flops, eight.macs) == (8 * one.flops, 8 * one.macs)
    assert eight.params == one.params
    assert eight.batch_size == 8


def test_non_square_input_and_reference_sizes() -> None:
    assert reference_input_shape("resnet50") == (3, 224, 224)
    assert reference_input_shape("inception_v3") == (3, 299, 299)
    assert reference_input_shape("efficientnet_b3") == (3, 300, 300)
    assert reference_input_shape("vit_h_14") == (3, 518, 518)
    wide = count_model_cost("resnet18", (3, 64, 128))
    square = count_model_cost("resnet18", (3, 64, 64))
    assert wide.input_shape == (3, 64, 128)
    assert square.macs < wide.macs < 2 * square.macs  # the fc layer does not grow with the image


def test_vit_is_built_for_the_size_asked_for() -> None:
    at_224 = count_model_cost("vit_b_32", (3, 224, 224))
    at_384 = count_model_cost("vit_b_32", (3, 384, 384))
    assert at_384.macs > 2.5 * at_224.macs  # 144 patches instead of 49, plus quadratic attention
    with pytest.raises(UsageError, match="square"):
        count_model_cost("vit_b_32", (3, 224, 160))


# --- per layer --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, shape", [("resnet18", (3, 64, 64)), ("vit_b_32", (3, 224, 224)), ("inception_v3", (3, 299, 299))])
def test_layer_macs_add_up_to_the_model_total(name: str, shape: tuple[int, int, int]) -> None:
    cost = count_model_cost(name, shape, batch_size=2, per_layer=True)
    assert cost.layers
    assert sum(layer.macs for layer in cost.layers) == cost.macs
    assert sum(layer.flops for layer in cost.layers) == cost.flops


def test_attention_work_is_attributed_to_the_attention_module() -> None:
    cost = count_model_cost("vit_b_32", (3, 224, 224), per_layer=True)
    attention = [layer for layer in cost.layers if layer.type == "MultiheadAttention"]
    assert len(attention) == 12
    assert all(layer.macs > 0 and layer.params > 0 for layer in attention)


def test_layer_fields_of_resnet18() -> None:
    cost = count_model_cost("resnet18", (3, 64, 64), batch_size=2, per_layer=True)
    layers = {layer.name: layer for layer in cost.layers}
    conv1 = layers["conv1"]
    assert cost.layers[0] is conv1  # in the order the forward pass runs them
    assert (conv1.type, conv1.output_shape) == ("Conv2d", (2, 64, 32, 32))
    assert conv1.macs == 2 * 64 * 32 * 32 * (3 * 7 * 7)  # batch x outputs x (in-channels x kernel)
    assert conv1.flops == 2 * conv1.macs
    assert conv1.params == 64 * 3 * 7 * 7
    assert conv1.activation_bytes == 2 * 64 * 32 * 32 * 4  # float32
    fc = layers["fc"]
    assert (fc.type, fc.output_shape, fc.macs, fc.params) == ("Linear", (2, 1000), 2 * 512 * 1000, 512 * 1000 + 1000)
    bn1 = layers["bn1"]
    assert (bn1.macs, bn1.params) == (0, 2 * 64)  # normalisation is not counted, like torchvision's _ops
    # every parameter belongs to exactly one reported layer
    assert sum(layer.params for layer in cost.layers) == cost.params


def test_per_layer_is_empty_unless_asked_for() -> None:
    assert count_model_cost("resnet18", (3, 64, 64)).layers == ()


def test_activation_bytes_follow_the_model_dtype() -> None:
    model = torchvision.models.resnet18().half()
    cost = count_cost(model, (3, 64, 64), per_layer=True)
    conv1 = cost.layers[0]
    assert conv1.activation_bytes == 64 * 32 * 32 * 2  # float16


# --- the caller's model and memory ------------------------------------------------------------------


class _DeviceRecorder(TorchDispatchMode):
    """Records the device of every tensor every aten op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.devices: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.devices.update(t.device.type for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        return out


def test_counting_vgg16_at_batch_128_computes_only_on_meta_tensors() -> None:
    recorder = _DeviceRecorder()
    with recorder:
        cost = count_model_cost("vgg16", batch_size=128, per_layer=True)
    assert recorder.devices == {"meta"}
    assert cost.macs == 128 * count_model_cost("vgg16").macs
    # the real forward would have held this much in its first layer's output alone
    assert cost.layers[0].activation_bytes == 128 * 64 * 224 * 224 * 4


def _snapshot(model: torch.nn.Module) -> dict:
    return {
        "training": [m.training for m in model.modules()],
        "tensors": {name: (t.device, t.data_ptr(), t.clone()) for name, t in model.state_dict(keep_vars=True).items()},
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
    }


def _assert_unchanged(model: torch.nn.Module, before: dict) -> None:
    after = _snapshot(model)
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]
    assert after["tensors"].keys() == before["tensors"].keys()
    for name, (device, pointer, value) in before["tensors"].items():
        new_device, new_pointer, new_value = after["tensors"][name]
        assert (new_device, new_pointer) == (device, pointer)
        assert torch.equal(new_value, value)


def test_count_cost_leaves_a_cpu_model_untouched() -> None:
    model = torchvision.models.resnet18().train()  # train mode: BatchNorm would update its statistics
    before = _snapshot(model)
    cost = count_cost(model, (3, 64, 64), batch_size=2, per_layer=True)
    _assert_unchanged(model, before)
    assert cost.macs == count_model_cost("resnet18", (3, 64, 64), batch_size=2).macs


def test_count_cost_counts_eval_mode_without_aux_heads() -> None:
    model = torchvision.models.googlenet(init_weights=False, aux_logits=True).train()
    cost = count_cost(model, (3, 224, 224))
    assert abs(cost.macs / 1e9 - torchvision_gmacs("googlenet")) <= 0.01 * torchvision_gmacs("googlenet")
    assert model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_count_cost_leaves_a_cuda_model_untouched() -> None:
    model = torchvision.models.mobilenet_v3_small().cuda().eval()
    before = _snapshot(model)
    allocated = torch.cuda.memory_allocated()
    cost = count_cost(model, (3, 224, 224), batch_size=64)
    assert torch.cuda.memory_allocated() == allocated
    _assert_unchanged(model, before)
    assert cost.macs == 64 * count_model_cost("mobilenet_v3_small").macs


# --- bad input --------------------------------------------------------------------------------------


def test_unknown_model_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="resnet5O"):
        count_model_cost("resnet5O")


@pytest.mark.parametrize(
    "name, shape",
    [("alexnet", (3, 16, 16)), ("vit_b_16", (3, 200, 200)), ("maxvit_t", (3, 200, 200))],  # too small, not 16 | 200, not 7 | 50
)
def test_a_shape_the_model_cannot_take_is_a_usage_error_naming_it(name: str, shape: tuple[int, int, int]) -> None:
    shape_text = "x".join(str(d) for d in shape)
    with pytest.raises(UsageError, match=f"{name} cannot take input shape {shape_text}: .*; its own input shape is 3x224x224"):
        count_model_cost(name, shape)


@pytest.mark.parametrize("shape", [(224, 224), (3, 0, 224), (3, 224, -1), (3, 224.0, 224), "224"])
def test_bad_input_shape_is_a_usage_error(shape) -> None:
    with pytest.raises(UsageError, match="input shape"):
        count_model_cost("resnet18", shape)


@pytest.mark.parametrize("batch", [0, -2, 1.5, "8", True])
def test_bad_batch_size_is_a_usage_error(batch) -> None:
    with pytest.raises(UsageError, match="batch size"):
        count_cost(torchvision.models.resnet18(), (3, 32, 32), batch_size=batch)

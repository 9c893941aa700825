import pytest
import torch

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.models import zoo


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache, so no test depends on what this machine has downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def test_random_weights_are_the_default_and_repeatable():
    first, second = zoo.build_model("resnet18"), zoo.build_model("resnet18", "random")
    assert not first.training
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_pretrained_weights_absent_from_cache_is_an_error_not_a_download(torch_home):
    with pytest.raises(UsageError, match="not in the torch cache .*never downloads"):
        zoo.build_model("resnet18", "DEFAULT")
    assert not (torch_home / "hub" / "checkpoints").exists()


def test_pretrained_weights_load_from_the_cache(torch_home):
    reference = zoo.build_model("squeezenet1_0")
    reference.features[0].weight.data.fill_(0.5)
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    url = torchvision_weights_url("squeezenet1_0")
    torch.save(reference.state_dict(), cache / url.rsplit("/", 1)[1])
    loaded = zoo.build_model("squeezenet1_0", "DEFAULT")
    assert torch.all(loaded.features[0].weight == 0.5)


def test_weights_from_a_path(tmp_path):
    model = zoo.build_model("squeezenet1_0")
    model.classifier[1].bias.data.fill_(3.0)
    path = tmp_path / "mine.pth"
    torch.save(model.state_dict(), path)
    assert torch.all(zoo.build_model("squeezenet1_0", str(path)).classifier[1].bias == 3.0)


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_corrupt_weights_file_is_named(tmp_path, content):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="cannot read weights from .*broken.pth"):
        zoo.build_model("squeezenet1_0", str(path))


def test_unknown_weights_name_lists_the_accepted_ones():
    with pytest.raises(UsageError, match="accepted: random, DEFAULT, IMAGENET1K_V1, a path"):
        zoo.build_model("resnet18", "IMAGENET9K")


def test_missing_weights_path():
    with pytest.raises(UsageError, match="no such file"):
        zoo.build_model("resnet18", "/nonexistent/weights.pth")


def test_reference_input_shape_follows_the_weights_preprocessing():
    assert zoo.reference_input_shape("resnet50") == (3, 224, 224)
    assert zoo.reference_input_shape("inception_v3") == (3, 299, 299)


def test_example_input_is_seeded():
    assert torch.equal(zoo.example_input(2, (3, 8, 8)), zoo.example_input(2, (3, 8, 8)))


def torchvision_weights_url(name: str) -> str:
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT.url

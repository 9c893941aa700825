import pytest
import torch

from pytest_edgeprof.device import (
    BOARDS,
    _jetson_profile,
    cpu_profile,
    machine_info,
    read_jetson_model,
    read_jetson_power_mode,
    resolve_device,
)
from pytest_edgeprof.errors import UsageError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a host without CUDA gives")


def test_cpu_profile_carries_ram_and_name():
    profile = resolve_device("cpu")
    assert profile.torch_device == "cpu"
    assert profile.memory_bytes > 2**30
    assert not profile.shared_memory


def test_auto_is_cpu_without_cuda():
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").torch_device == expected


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:1", "rtx-3070"])
def test_cuda_without_gpu_names_the_host(spec):
    with pytest.raises(UsageError, match=rf"--device {spec}: this host has no CUDA GPU.*it is .*no CUDA GPU"):
        resolve_device(spec)


def test_jetson_on_a_pc_says_what_the_host_is(tmp_path):
    with pytest.raises(UsageError, match=r"this host is not a Jetson .* it is x86_64|this host is not a Jetson .*it is"):
        resolve_device("jetson", device_tree_model=tmp_path / "missing")


def test_named_jetson_profile_must_match_the_board(tmp_path):
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    with pytest.raises(UsageError, match="not a jetson-nano .*Orin Nano"):
        resolve_device("jetson-nano", device_tree_model=model)


def test_unknown_device_lists_accepted():
    with pytest.raises(UsageError, match="unknown --device 'tpu'; accepted: auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.parametrize(
    "text, board",
    [
        (b"NVIDIA Jetson Nano Developer Kit\x00", "jetson-nano"),
        (b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00", "jetson-orin-nano"),
        (b"Jetson-AGX Orin\x00", "jetson-agx-orin"),
    ],
)
def test_jetson_board_detected_from_device_tree(tmp_path, text, board):
    model = tmp_path / "model"
    model.write_bytes(text)
    detected = read_jetson_model(model)
    profile = _jetson_profile(detected)
    assert profile.name == board
    assert profile.shared_memory and profile.memory_bytes == BOARDS[board].memory_bytes


def test_a_pc_device_tree_is_not_a_jetson(tmp_path):
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 4 Model B\x00")
    assert read_jetson_model(model) is None


def test_power_mode_read_from_nvpmodel_status(tmp_path):
    status = tmp_path / "status"
    status.write_text("pmode:0001 fmode:fanNull\n")
    assert read_jetson_power_mode(status) == "1"
    assert read_jetson_power_mode(tmp_path / "absent") is None


def test_machine_info_records_threads_and_torch():
    info = machine_info(cpu_profile())
    assert info["num_threads"] == torch.get_num_threads()
    assert info["torch_version"] == torch.__version__
    assert info["device"] == "cpu" and info["device_description"]

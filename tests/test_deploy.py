"""Precision and runtime: each configuration of a model runs, keeps its accuracy, and is as small as it says.

Accuracy is held on data whose labels mean something (scikit-learn's digits, a small CNN trained in
seconds): int8 through each runtime here within 2 points of float32 top-1, fp16 and bf16 within 1.
"""

import pytest
import torch
from digits import DIGIT_SHAPE, digit_net, digits, one_thread, trained  # noqa: F401 (fixtures)
from torch import nn
from torch.utils.data import DataLoader

from pytest_edgeprof.device import cpu_profile
from pytest_edgeprof.errors import DeployUnsupported
from pytest_edgeprof.measure.cell import measure_cell
from pytest_edgeprof.measure.deployed import RESIDENT
from pytest_edgeprof.measure.energy import open_meter
from pytest_edgeprof.measure.memory import model_bytes
from pytest_edgeprof.measure.timing import StoppingRule
from pytest_edgeprof.measurement import Cell, Measurement
from pytest_edgeprof.models.accuracy import evaluate
from pytest_edgeprof.models.deploy.calibration import Calibration
from pytest_edgeprof.models.deploy.deployer import Deployer
from pytest_edgeprof.models.deploy.support import unsupported
from pytest_edgeprof.models.zoo import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def deployer(digits, tmp_path_factory):
    images = digits[0].tensors[0][:64]  # calibrated on training images, judged on the test split
    return Deployer(Calibration(given=images), cache_dir=tmp_path_factory.mktemp("deployed"))


def _top1(model, digits) -> float:
    return evaluate(model, DataLoader(digits[1], batch_size=128)).top1


@pytest.mark.parametrize("precision, runtime, points", [
    ("int8", "eager", 2.0), ("int8", "compile", 2.0), ("int8", "onnxruntime", 2.0),
    ("bf16", "eager", 1.0), ("fp16", "eager", 1.0), ("fp32", "onnxruntime", 0.0),
])
def test_a_configuration_keeps_the_digits_accuracy(trained, digits, deployer, precision, runtime, points):
    reference = _top1(trained, digits)
    cell = Cell("digits", "base", 128, DIGIT_SHAPE, precision, runtime)
    deployed = deployer.deploy(trained, cell, "cpu", {"module": "digits"})
    top1 = _top1(deployed.predict, digits)
    assert reference > 90
    assert abs(top1 - reference) <= points, (precision, runtime, top1, reference)
    assert (deployed.precision, deployed.runtime) == (precision, runtime)


def test_int8_holds_a_quarter_of_the_float_bytes_and_names_its_calibration(tmp_path):
    model = build_model("resnet18")
    deployer = Deployer(cache_dir=tmp_path)
    for runtime in ("eager", "onnxruntime"):
        deployed = deployer.deploy(model, Cell("resnet18", "base", 1, (3, 32, 32), "int8", runtime), "cpu", {"model": "resnet18"})
        assert deployed.model_bytes <= 0.30 * model_bytes(model), runtime
        assert "32 generated images (seed 0)" in deployed.deployment.quantization
    assert model_bytes(model) == model_bytes(build_model("resnet18"))  # the float32 module is left as it was


@pytest.mark.parametrize("runtime, suffix", [("onnxruntime", ".onnx"), ("eager", ".pt2")])
def test_a_quantized_model_is_made_once_and_found_again(trained, digits, deployer, runtime, suffix):
    cell = Cell("digits", "base", 4, DIGIT_SHAPE, "int8", runtime)
    made = deployer.deploy(trained, cell, "cpu", {"module": "digits"})
    files = {path: path.stat().st_mtime_ns for path in deployer.cache_dir.glob(f"*int8*{suffix}")}
    found = deployer.deploy(trained, cell, "cpu", {"module": "digits"})
    assert files and {path: path.stat().st_mtime_ns for path in deployer.cache_dir.glob(f"*int8*{suffix}")} == files
    images = digits[1].tensors[0][:16]
    assert torch.equal(found.predict(images), made.predict(images))  # the cached model is the model made
    other = Deployer(Calibration(given=torch.zeros(8, *DIGIT_SHAPE)), cache_dir=deployer.cache_dir)
    other.deploy(trained, cell, "cpu", {"module": "digits"})  # other calibration images: another file
    retrained = digit_net()  # the same architecture and name, other weights: another file
    deployer.deploy(retrained, cell, "cpu", {"module": "digits"})
    assert len(list(deployer.cache_dir.glob(f"*int8*{suffix}"))) == len(files) + 2


class BranchesOnValues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y if y.sum() > 0 else -y  # data-dependent control flow: export cannot trace it


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_a_model_the_exporter_cannot_take_is_one_line(tmp_path, runtime):
    cell = Cell("branchy", "base", 1, DIGIT_SHAPE, "int8", runtime)
    with pytest.raises(DeployUnsupported) as raised:
        Deployer(cache_dir=tmp_path).deploy(BranchesOnValues(), cell, "cpu", {"module": "branchy"})
    assert "\n" not in str(raised.value) and ("export" in str(raised.value) or "quantize" in str(raised.value))


def test_onnxruntime_memory_is_the_resident_peak_and_the_timer_the_host_clock(trained, deployer):
    cell = Cell("digits", "base", 64, DIGIT_SHAPE, "fp32", "onnxruntime")
    deployed = deployer.deploy(trained, cell, "cpu", {"module": "digits"})
    assert deployed.memory == RESIDENT and deployed.synchronous
    profile = cpu_profile()
    meter = open_meter(profile, no_energy=True)
    measurement = measure_cell(deployed, cell, profile, meter, StoppingRule(0.05, 5, max_time_s=0.5).run)
    info = measurement.to_extra_info()
    assert info["runtime"] == "onnxruntime" and info["provider"] == "CPUExecutionProvider"
    assert info["runtime_version"].startswith("onnxruntime ")
    assert info["runtime_options"]["enable_cpu_mem_arena"] is False
    assert info["peak_mem_method"].startswith("process resident high-water")
    assert info["peak_mem_bytes"] >= info["model_bytes"] + 64 * 64 * 4
    assert Measurement.from_extra_info(info).deployment == measurement.deployment


def test_compile_time_is_saved_and_never_a_round(trained):
    cell = Cell("digits", "base", 8, DIGIT_SHAPE, "fp32", "compile")
    deployed = Deployer().deploy(trained, cell, "cpu", {"module": "digits"})
    profile = cpu_profile()
    measurement = measure_cell(deployed, cell, profile, open_meter(profile, no_energy=True),
                               StoppingRule(0.05, 5, max_time_s=0.5).run)
    assert measurement.deployment.compile_s > 0.05  # compiling takes seconds; a call of this net, microseconds
    assert max(measurement.latency.samples_s) < measurement.deployment.compile_s
    assert measurement.deployment.options["backend"] == "inductor"


def test_precisions_the_cpu_lacks_are_said_up_front(monkeypatch):
    from pytest_edgeprof.models.deploy import support

    monkeypatch.setattr(support, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512_bf16"}))
    assert "fp16 on this CPU would be emulated: it has none of avx512_fp16" in unsupported(cpu_profile(), "fp16", "eager")
    assert unsupported(cpu_profile(), "bf16", "eager") is None
    assert unsupported(cpu_profile(), "int8", "eager") is None
    assert "TensorRT runs on NVIDIA GPUs" in unsupported(cpu_profile(), "fp32", "tensorrt")
    assert "numpy has no bfloat16" in unsupported(cpu_profile(), "bf16", "onnxruntime")

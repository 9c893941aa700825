"""``Deployer``: a float32 module as a cell's precision and runtime run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from pytest_edgeprof.axes import DEFAULT_PRECISION, PRECISIONS, RUNTIMES
from pytest_edgeprof.errors import DeployUnsupported, UsageError, first_line
from pytest_edgeprof.measure.deployed import Deployed, eager
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.models.deploy.cache import check_cache
from pytest_edgeprof.models.deploy.calibration import Calibration
from pytest_edgeprof.models.zoo import example_input
from pytest_edgeprof.paths import default_cache_dir

EXPORT_BATCH = 2  # a batch of 1 would let export specialise the dynamic batch dimension to 1


def default_deploy_cache() -> Path:
    """Exported and quantized models (ONNX files, PT2E programs): beside the pruned variants, under
    pytest-edgeprof/deployed."""
    return default_cache_dir().parent / "deployed"


def uses_cache(cell: Cell) -> bool:
    """Whether deploying ``cell`` reads or writes the deployed-model cache: a quantized precision (a calibrated
    program) and a runtime that runs an exported file do, casts and the float32 module do not."""
    return RUNTIMES[cell.runtime].cached or PRECISIONS[cell.precision].calibrated


@dataclass(frozen=True)
class Deployer:
    """How this run deploys its models (picklable, so an isolated child deploys the same way)."""

    calibration: Calibration = field(default_factory=Calibration)
    cache_dir: Path | None = None  # None: default_deploy_cache()

    def deploy(self, module: nn.Module, cell: Cell, device: str, identity: dict[str, str]) -> Deployed:
        """``module`` (float32, any device) as ``cell``'s precision and runtime run it on ``device``, by the
        runtime's deployer (``axes.RUNTIMES``); ``DeployUnsupported`` where the exporter, quantizer or runtime
        cannot handle it."""
        if uses_cache(cell):
            self.check_cache()
        return RUNTIMES[cell.runtime].deploy_function()(module, cell, device, identity, self)

    @property
    def cache(self) -> Path:
        return self.cache_dir or default_deploy_cache()

    def check_cache(self) -> None:
        """The deployed-model cache can be written (and its key read): else one UsageError line, before anything runs."""
        check_cache(self.cache)


# Each runtime's deployer, named in its registry entry: (module, cell, device, identity, deployer) -> Deployed.


def deploy_eager(module: nn.Module, cell: Cell, device: str, identity: dict[str, str], deployer: Deployer) -> Deployed:
    """PyTorch eager: the module cast to the cell's precision, or quantized to int8 through PT2E."""
    from pytest_edgeprof.models.deploy import torch_runtimes

    if cell.precision == "int8":
        quantized, how = _quantized(module, cell, identity, deployer)
        return torch_runtimes.int8_eager(module, quantized, how, device)
    if cell.precision == DEFAULT_PRECISION:
        return eager(module, device)
    return torch_runtimes.cast(module, device, cell.precision)


def deploy_compiled(module: nn.Module, cell: Cell, device: str, identity: dict[str, str],
                    deployer: Deployer) -> Deployed:
    """torch.compile (inductor) of the eager deployment, for the cell's batch and shape."""
    from pytest_edgeprof.models.deploy import torch_runtimes

    deployed = deploy_eager(module, cell, device, identity, deployer)
    return torch_runtimes.compiled(deployed, example_input(cell.batch_size, cell.input_shape))


def deploy_onnx(module: nn.Module, cell: Cell, device: str, identity: dict[str, str], deployer: Deployer) -> Deployed:
    """Exported to ONNX and run by an ONNX Runtime session (tensorrt: through its TensorRT provider)."""
    from pytest_edgeprof.models.deploy.onnx_runtime import onnx_deployed

    return onnx_deployed(module, example_input(EXPORT_BATCH, cell.input_shape), cell.precision, cell.runtime, device,
                         identity=identity, calibration=deployer.calibration, cache_dir=deployer.cache,
                         model_name=cell.model)


def _quantized(module: nn.Module, cell: Cell, identity: dict[str, str], deployer: Deployer) -> tuple[nn.Module, str]:
    from pytest_edgeprof.models.deploy.torch_runtimes import quantized_pt2e

    try:
        return quantized_pt2e(module, example_input(EXPORT_BATCH, cell.input_shape), deployer.calibration,
                              model_name=cell.model, identity=identity, cache_dir=deployer.cache)
    except UsageError:  # the cache cannot be written, the calibration images cannot be read
        raise
    except Exception as exc:
        raise DeployUnsupported(f"PT2E cannot quantize it: {first_line(exc, with_type=True, limit=200)}") from None

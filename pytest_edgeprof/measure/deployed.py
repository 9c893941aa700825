"""A model as one cell runs it: the call that is timed, the input it takes, and what ran it.

``models/deploy/`` makes one for each precision and runtime (a cast module, a quantized graph, a
compiled module, an ONNX Runtime session); ``measure_cell`` times ``run`` on a prepared input and
counts FLOPs on ``module``, the network in float32 torch form, since a precision changes the
numbers' width, not how many operations there are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pytest_edgeprof.axes import DEFAULT_PRECISION, DEFAULT_RUNTIME
from pytest_edgeprof.measure.memory import model_bytes
from pytest_edgeprof.measurement import Deployment

# How a runtime's peak memory can be read: torch's own allocations, or the process's resident high-water.
TORCH_ALLOCATIONS, RESIDENT = "torch", "resident"


@dataclass
class Deployed:
    module: nn.Module  # the network in float32 torch form: FLOPs, parameters
    run: Callable[[Any], Any]  # one forward pass of one prepared batch
    prepare: Callable[[Any], Any]  # a float32 batch (a detector's: a list of images) -> the input ``run`` takes, on the device
    deployment: Deployment
    model_bytes: int  # what the deployed model holds (int8 weights are a quarter of float32's)
    memory: str = TORCH_ALLOCATIONS
    precision: str = DEFAULT_PRECISION
    runtime: str = DEFAULT_RUNTIME
    synchronous: bool = False  # ``run`` returns once the device is done (ONNX Runtime): timed on the host clock

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Float32 scores for a float32 batch (accuracy compares deployments on these)."""
        return as_tensor(self.run(self.prepare(images))).float()


def eager(module: nn.Module, device: str) -> Deployed:
    """The module as it is, in float32 eager PyTorch: the default deployment."""
    module = module.eval().to(device)
    return Deployed(module, module, lambda images: on_device(images, device), torch_deployment(device), model_bytes(module))


def on_device(example: Any, device: str, dtype: torch.dtype | None = None) -> Any:
    """A batch, or a detection model's list of images, on ``device`` (in ``dtype`` where given)."""
    if isinstance(example, list):
        return [image.to(device=device, dtype=dtype) for image in example]
    return example.to(device=device, dtype=dtype)


def as_deployed(model: nn.Module | Deployed, device: str) -> Deployed:
    """``model`` as a cell runs it: a ``Deployed`` as it is, a module as float32 eager on ``device``."""
    return model if isinstance(model, Deployed) else eager(model, device)


def torch_deployment(device: str, **options: Any) -> Deployment:
    return Deployment(f"torch {torch.__version__}", device, options)


def as_tensor(output: Any) -> torch.Tensor:
    """A runtime's first output as a torch tensor (ONNX Runtime returns a list of numpy arrays)."""
    if isinstance(output, (list, tuple)):
        output = output[0]
    return output if isinstance(output, torch.Tensor) else torch.from_numpy(output)

"""PyTorch's own runtimes: eager at a cast precision, int8 through PT2E quantization, and torch.compile.

int8 is post-training static quantization through PT2E (torchao's ``prepare_pt2e`` / ``convert_pt2e``
with the X86 Inductor quantizer, the path torch's own ``torch.ao`` PT2E moved to): the graph is
exported, observed on the calibration images and converted, its weights folded to int8, and saved
as an exported program in the deployed-model cache (``cache.py``, which loads only a file that verifies
against the digest recorded when it was written: ``torch.export.load`` unpickles). Eager runs
that graph as it is (each layer dequantizes its int8 weights, so it is small, not fast); compile
lowers it with Inductor to int8 kernels.
"""

from __future__ import annotations

import copy
import io
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pytest_edgeprof.axes import torch_dtype
from pytest_edgeprof.cache_integrity import discard
from pytest_edgeprof.errors import first_line
from pytest_edgeprof.measure.deployed import Deployed, on_device, torch_deployment
from pytest_edgeprof.measure.memory import model_bytes
from pytest_edgeprof.models.deploy.cache import WHAT, cached_file, read_cached, weights_digest, write_once
from pytest_edgeprof.models.deploy.calibration import Calibration, image_shape

PT2E_QUANTIZER = "PT2E static, X86InductorQuantizer default config (per-channel weights, per-tensor activations)"


def cast(module: nn.Module, device: str, precision: str) -> Deployed:
    """The module and its input in ``precision`` on ``device`` (fp32, fp16, bf16), eager."""
    dtype = torch_dtype(precision)
    runnable = copy.deepcopy(module).eval().to(device=device, dtype=dtype)  # the float32 module stays as it is
    return Deployed(module, runnable, lambda images: on_device(images, device, dtype),
                    torch_deployment(device), model_bytes(runnable), precision=precision)


def quantized_pt2e(module: nn.Module, example: torch.Tensor, calibration: Calibration, *, model_name: str,
                   identity: dict[str, str], cache_dir: Path) -> tuple[nn.Module, str]:
    """The module quantized to int8 through PT2E, from the cache or made now (calibrated on ``calibration``,
    then saved as an exported program); and what was done, in words."""
    import torchao

    made_from = {"identity": identity, "weights": weights_digest(module), "input_shape": list(example.shape[1:]),
                 "calibration": calibration.identity(),
                 "torch": torch.__version__, "torchao": torchao.__version__}
    path = cached_file(cache_dir, f"{model_name}-int8-pt2e", tuple(example.shape[1:]), ".pt2", made_from)
    how = f"{PT2E_QUANTIZER}; calibrated on {calibration.identity()}"
    cached = read_cached(path)  # torch.export.load unpickles: only a file that verifies is loaded
    if cached is not None:
        try:
            return torch.export.load(io.BytesIO(cached)).module(), how
        except Exception as exc:  # written by this user's edgeprof, yet unloadable: made again
            discard(path, WHAT, first_line(exc, with_type=True, limit=200))
    quantized = _quantize_pt2e(module, example, calibration, model_name)

    def save(scratch: Path) -> Path:
        program = torch.export.export(quantized, (example,), dynamic_shapes=({0: _batch()},))
        archive = io.BytesIO()  # written by Python's file calls, whose OSError names a full disk
        torch.export.save(program, archive)
        (scratch / "int8.pt2").write_bytes(archive.getvalue())
        return scratch / "int8.pt2"

    write_once(path, save)
    return quantized, how


def _batch() -> Any:
    return torch.export.Dim("batch", min=1)


def _quantize_pt2e(module: nn.Module, example: torch.Tensor, calibration: Calibration, model_name: str) -> nn.Module:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    # strict export names every call of a shared module (resnet's one ReLU used twice) apart, which the
    # quantizer's pattern matching needs
    graph = torch.export.export(module.eval().cpu(), (example.cpu(),), dynamic_shapes=({0: _batch()},), strict=True).module()
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    observed = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for images in calibration.batches(model_name, image_shape(example)):
            observed(images)
    quantized = convert_pt2e(observed)
    _drop_unused_attributes(quantized)
    return quantized


def _drop_unused_attributes(graph: torch.fx.GraphModule) -> None:
    """Remove the float32 weights that folding left behind: the graph reads their int8 copies."""
    used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    for name, _ in [*graph.named_parameters(), *graph.named_buffers()]:
        if name not in used:
            owner, _, attribute = name.rpartition(".")
            delattr(graph.get_submodule(owner), attribute)
    graph.delete_all_unused_submodules()


def int8_eager(module: nn.Module, quantized: nn.Module, quantization: str, device: str) -> Deployed:
    deployment = replace(torch_deployment(device), quantization=quantization)
    return Deployed(module, quantized, lambda images: on_device(images, device), deployment, model_bytes(quantized),
                    precision="int8")


def compiled(deployed: Deployed, example: torch.Tensor) -> Deployed:
    """``deployed`` compiled by torch.compile (Inductor, frozen weights, one graph per batch and shape); the
    first call, which compiles, is timed into ``compile_s`` and is never a round."""
    import torch._dynamo
    import torch._inductor.config

    torch._dynamo.reset()  # a fresh cache per cell: its limit would otherwise send later shapes back to eager
    runnable = torch.compile(deployed.run, backend="inductor", dynamic=False)
    prepared = deployed.prepare(example)
    with torch.inference_mode(), torch._inductor.config.patch(freezing=True):  # as the rounds run
        start = time.perf_counter()
        runnable(prepared)
        compile_s = time.perf_counter() - start
    options: dict[str, Any] = {"backend": "inductor", "dynamic": False, "freezing": True}
    deployment = replace(deployed.deployment, options=options, compile_s=round(compile_s, 3))
    return replace(deployed, run=runnable, deployment=deployment, runtime="compile")

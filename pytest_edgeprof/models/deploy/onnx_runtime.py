"""ONNX Runtime (and its TensorRT provider): the model exported to ONNX, quantized by ONNX Runtime for
int8, run by an ``InferenceSession``.

Export is ``torch.onnx.export(..., dynamo=True)``, the exporter torch 2.14 recommends, with the batch
dimension dynamic; int8 is ONNX Runtime's ``quantize_static`` (QDQ format, per-channel int8 weights,
uint8 activations) on the calibration images. Each file is cached (``cache.py``), and a session is made
from the cached bytes that verified, never from the path. ONNX Runtime allocates outside torch, so the
session runs without its CPU memory arena and a call's peak is the process's resident high-water over
it (``peak_mem_method`` says so).
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pytest_edgeprof.axes import torch_dtype
from pytest_edgeprof.errors import DeployUnsupported, first_line
from pytest_edgeprof.measure.deployed import RESIDENT, Deployed
from pytest_edgeprof.measurement import Deployment
from pytest_edgeprof.models.deploy.cache import cached_file, read_cached, weights_digest, write_once
from pytest_edgeprof.models.deploy.calibration import Calibration, image_shape

INT8_METHOD = "onnxruntime quantize_static, QDQ, per-channel int8 weights, uint8 activations"
INPUT, OUTPUT = "input", "output"


def onnx_deployed(module: nn.Module, example: torch.Tensor, precision: str, runtime: str, device: str, *,
                  identity: dict[str, str], calibration: Calibration, cache_dir: Path, model_name: str) -> Deployed:
    """The module as an ONNX Runtime session on ``device`` (``runtime`` tensorrt: through its TensorRT provider)."""
    import onnxruntime

    model, quantization = onnx_model(module, example, precision, identity=identity, calibration=calibration,
                                     cache_dir=cache_dir, model_name=model_name)
    options, settings = _session_options()
    providers = _providers(device, runtime, precision)
    try:
        session = onnxruntime.InferenceSession(model, options, providers=providers)
    except Exception as exc:  # a kernel the provider lacks for this precision, a model it cannot load
        raise DeployUnsupported(f"ONNX Runtime cannot load the {precision} model: {_first_line(exc)}") from None
    used = session.get_providers()[0]
    deployment = Deployment(f"onnxruntime {onnxruntime.__version__}", used, settings, quantization=quantization)
    prepare, run = _runner(session, device, torch_dtype(precision))
    return Deployed(module, run, prepare, deployment, len(model), memory=RESIDENT, precision=precision,
                    runtime=runtime, synchronous=True)


def onnx_model(module: nn.Module, example: torch.Tensor, precision: str, *, identity: dict[str, str],
               calibration: Calibration, cache_dir: Path, model_name: str) -> tuple[bytes, str]:
    """The ONNX model of the module at ``precision`` for inputs shaped like ``example`` (any batch), from the
    cache (where it verifies) or made now, as the bytes ONNX Runtime loads; and, for int8, how it was quantized."""
    import onnxruntime

    shape = tuple(example.shape[1:])
    made_from = {"identity": identity, "weights": weights_digest(module), "precision": precision,
                 "input_shape": list(shape), "torch": torch.__version__,
                 "onnxruntime": onnxruntime.__version__,
                 "calibration": calibration.identity() if precision == "int8" else ""}
    path = cached_file(cache_dir, f"{model_name}-{precision}", shape, ".onnx", made_from)
    quantization = f"{INT8_METHOD}; calibrated on {calibration.identity()}" if precision == "int8" else ""

    def make(scratch: Path) -> Path:
        made = scratch / "model.onnx"
        _export(module, example, torch_dtype(precision), made)
        return _quantize(made, calibration, model_name, example, scratch) if precision == "int8" else made

    cached = read_cached(path)
    return (cached if cached is not None else write_once(path, make)), quantization


def _export(module: nn.Module, example: torch.Tensor, dtype: torch.dtype, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    cast = copy.deepcopy(module).eval().cpu().to(dtype)  # the float32 module stays as it is
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter reports its steps on stdout
            program = torch.onnx.export(cast, (example.cpu().to(dtype),), dynamo=True, input_names=[INPUT],
                                        output_names=[OUTPUT], dynamic_shapes=({0: batch},), verbose=False)
            if program is None:  # only the legacy exporter (dynamo=False) returns none
                raise DeployUnsupported("torch.onnx.export returned no program")
            program.save(str(path))
    except OSError:  # writing the file: the cache's to word
        raise
    except Exception as exc:
        raise DeployUnsupported(f"torch.onnx.export cannot export it: {_first_line(exc)}") from None


def _quantize(path: Path, calibration: Calibration, model_name: str, example: torch.Tensor, scratch: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = iter(calibration.batches(model_name, image_shape(example)))

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            images = next(batches, None)
            return None if images is None else {INPUT: images.numpy()}

    prepared, quantized = scratch / "prepared.onnx", scratch / "int8.onnx"
    try:
        quant_pre_process(str(path), str(prepared))
        quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    except OSError:  # writing its files: the cache's to word
        raise
    except Exception as exc:
        raise DeployUnsupported(f"ONNX Runtime cannot quantize it: {_first_line(exc)}") from None
    return quantized


def _session_options() -> tuple[Any, dict[str, Any]]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.enable_cpu_mem_arena = False  # a call's memory comes and goes with it, for the resident peak to see
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    settings = {"intra_op_num_threads": options.intra_op_num_threads, "enable_cpu_mem_arena": False,
                "graph_optimization_level": "ORT_ENABLE_ALL"}
    return options, settings


def _providers(device: str, runtime: str, precision: str) -> list[Any]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device == "cpu":
        wanted: list[Any] = ["CPUExecutionProvider"]
    else:
        index = torch.device(device).index or 0
        wanted = [("CUDAExecutionProvider", {"device_id": index})]
        if runtime == "tensorrt":
            wanted.insert(0, ("TensorrtExecutionProvider", {"device_id": index, "trt_fp16_enable": precision == "fp16",
                                                            "trt_int8_enable": precision == "int8"}))
    for provider in wanted:
        name = provider if isinstance(provider, str) else provider[0]
        if name not in available:
            raise DeployUnsupported(f"ONNX Runtime here has no {name} (it has {', '.join(available)})")
    return wanted


def _runner(session: Any, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """``prepare`` and ``run``: on the CPU numpy in, numpy out; on a GPU the input stays on the device (IOBinding),
    so no host-to-device copy is timed, and ``run`` returns once ONNX Runtime's stream is done."""
    if device == "cpu":
        def prepare(images: torch.Tensor) -> np.ndarray:
            return images.to(dtype).numpy()

        return prepare, lambda array: session.run(None, {INPUT: array})

    index = torch.device(device).index or 0
    numpy_dtype = torch.empty((), dtype=dtype).numpy().dtype

    def run_on_device(tensor: torch.Tensor) -> Any:
        binding = session.io_binding()
        binding.bind_input(INPUT, "cuda", index, numpy_dtype, list(tensor.shape), tensor.data_ptr())
        binding.bind_output(OUTPUT, "cuda", index)
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    return lambda images: images.to(device=device, dtype=dtype).contiguous(), run_on_device


def _first_line(exc: BaseException) -> str:
    return first_line(exc, with_type=True, limit=200)

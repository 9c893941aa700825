"""Peak-memory meters, measured on real torch allocations and real torchvision models."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from pytest_edgeprof.device import cpu_profile
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.cell import memory_of
from pytest_edgeprof.measure.memory import MemoryReading, measure_peak_memory, model_bytes
from pytest_edgeprof.measurement import Cell, Measurement
from pytest_edgeprof.outcome import is_out_of_memory

CPU = torch.device("cpu")
MB100 = 100_000_000  # bytes of 25 million float32


def _ones_100mb() -> torch.Tensor:
    return torch.ones(MB100 // 4)


def test_one_100mb_tensor_reads_100mb() -> None:
    reading = measure_peak_memory(_ones_100mb, CPU)
    assert MB100 <= reading.peak_mem_bytes <= MB100 + 4096
    # every page of the tensor is written, so the resident peak sees it too
    assert 0.9 * MB100 <= reading.peak_rss_bytes <= 1.2 * MB100
    assert reading.peak_reserved_bytes is None


def test_peak_is_the_most_held_at_once_not_the_sum_of_allocations() -> None:
    def three_tensors_two_alive() -> torch.Tensor:
        a = _ones_100mb()
        b = a * 2
        del a
        return b + 1  # 300 MB allocated in all, never more than 200 MB alive

    reading = measure_peak_memory(three_tensors_two_alive, CPU)
    assert 2 * MB100 <= reading.peak_mem_bytes <= 2 * MB100 + 4096


def test_freeing_tensors_from_before_the_call_does_not_lower_its_peak() -> None:
    kept: list[torch.Tensor] = []
    measure_peak_memory(lambda: kept.append(_ones_100mb()), CPU)  # allocated under an earlier profiler

    def free_old_then_allocate() -> torch.Tensor:
        kept.clear()
        return torch.ones(MB100 // 8)  # 50 MB

    reading = measure_peak_memory(free_old_then_allocate, CPU)
    assert MB100 // 2 <= reading.peak_mem_bytes <= MB100 // 2 + 4096


def _cell(name: str, batch: int, size: int):
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(batch, 3, size, size)

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    forward()  # warm-up, as a cell does before it is measured
    return forward


def test_a_cell_reads_the_same_after_a_larger_cell_in_both_orders() -> None:
    cells = {"small": _cell("mobilenet_v3_small", 1, 64), "large": _cell("resnet18", 4, 112)}
    readings = {}
    for order in (("small", "large"), ("large", "small")):
        for name in order:
            readings[name, order[0]] = measure_peak_memory(cells[name], CPU).peak_mem_bytes
    assert readings["large", "small"] > 5 * readings["small", "small"]  # the larger cell is larger
    for name in cells:
        assert readings[name, "large"] == pytest.approx(readings[name, "small"], rel=0.05), name


def test_a_cells_peak_holds_weights_input_and_the_forward_peak_under_its_saved_keys() -> None:
    model, example = nn.Linear(1000, 1000), torch.ones(8, 1000)
    memory = memory_of(model, example, cpu_profile())
    info = Measurement(Cell("linear", "base", 8, (1, 1, 1000)), "cpu", memory=memory).to_extra_info()
    assert {"peak_mem_bytes", "peak_rss_bytes", "peak_mem_method", "activation_peak_bytes"} <= set(info)
    assert isinstance(info["peak_mem_bytes"], int)
    weights_and_input = (1000 * 1000 + 1000) * 4 + 8 * 1000 * 4
    assert info["peak_mem_bytes"] == memory.activation_peak_bytes + weights_and_input
    assert memory.activation_peak_bytes >= 8 * 1000 * 4  # at least the output


def test_model_bytes_counts_parameters_and_buffers_once() -> None:
    linear = nn.Linear(10, 5)  # 55 float32 parameters
    norm = nn.BatchNorm1d(5)  # 10 float32 parameters, 10 float32 running stats, one int64 counter
    assert model_bytes(nn.Sequential(linear, norm)) == 55 * 4 + 10 * 4 + 10 * 4 + 8
    tied = nn.Sequential(linear, linear)
    assert model_bytes(tied) == 55 * 4


def test_model_bytes_of_resnet18_is_its_published_parameters_plus_batchnorm_buffers() -> None:
    model = torchvision.models.resnet18(weights=None)
    params = torchvision.models.ResNet18_Weights.DEFAULT.meta["num_params"]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    buffers = sum(2 * 4 * m.num_features + 8 for m in norms)
    assert model_bytes(model) == params * 4 + buffers


def test_real_cpu_out_of_memory_is_recognised() -> None:
    with pytest.raises(RuntimeError) as caught:
        torch.empty(2**50, dtype=torch.uint8)  # one pebibyte
    assert is_out_of_memory(caught.value)


def test_python_memory_error_is_recognised() -> None:
    with pytest.raises(MemoryError) as caught:
        bytearray(2**62)
    assert is_out_of_memory(caught.value)


@pytest.mark.parametrize(
    "exc, expected",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("CUDA error: out of memory"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_out_of_memory_by_type_and_message(exc: BaseException, expected: bool) -> None:
    assert is_out_of_memory(exc) is expected


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_cuda_100mb_tensor_reads_100mb_above_what_was_allocated_before() -> None:
    cuda = torch.device("cuda")
    already = torch.ones(MB100 // 4, device=cuda)  # alive before: not the call's
    reading = measure_peak_memory(lambda: torch.ones(MB100 // 4, device=cuda), cuda)
    assert MB100 <= reading.peak_mem_bytes <= MB100 + 2 * 2**20  # allocator rounds to 2 MiB blocks
    assert reading.peak_reserved_bytes is not None and reading.peak_reserved_bytes >= MB100
    assert already.numel() == MB100 // 4


@needs_cuda
def test_cuda_shared_memory_budgets_against_the_larger_peak() -> None:
    cuda = torch.device("cuda")

    def host_heavy() -> None:
        torch.ones(MB100 // 4)  # 100 MB on the host
        torch.ones(MB100 // 40, device=cuda)  # 10 MB on the GPU

    reading: MemoryReading = measure_peak_memory(host_heavy, cuda, shared_memory=True)
    assert reading.peak_mem_bytes == reading.peak_rss_bytes >= 0.9 * MB100
    assert reading.method.startswith("process resident peak, VmHWM")


def test_devices_without_a_meter_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="peak memory on device 'meta' is not supported; accepted: cpu, cuda"):
        measure_peak_memory(lambda: None, torch.device("meta"))

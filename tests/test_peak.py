"""The device's achievable peak: probed at a precision, cached per machine, threads and precision."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.benchmark import Timer

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure import peak
from pytest_edgeprof.measure.peak import DevicePeak, probe_peak


@pytest.fixture(scope="module")
def cpu_peak(tmp_path_factory) -> tuple[DevicePeak, object]:
    folder = tmp_path_factory.mktemp("peaks")
    return probe_peak("cpu", "fp32", cache_dir=folder), folder


def test_the_probe_measures_a_gemm_and_a_copy_and_says_how(cpu_peak):
    found, _ = cpu_peak
    assert found.device == "cpu" and found.precision == "fp32"
    assert found.flops_per_s > 1e9 and found.bytes_per_s > 1e8  # any CPU this suite runs on does more
    assert "gemm n=" in found.method and "fp32" in found.method and f"{torch.get_num_threads()} threads" in found.method


def test_a_model_of_plain_matrix_products_stays_below_the_peak(cpu_peak):
    found, _ = cpu_peak
    a = torch.randn(256, 256)
    timed = Timer("torch.mm(a, a)", globals={"torch": torch, "a": a}).blocked_autorange(min_run_time=0.2)
    assert 2 * 256**3 / timed.median < 1.5 * found.flops_per_s  # a small GEMM does not beat the probed peak


def test_the_second_probe_reads_the_cache_without_measuring(cpu_peak, monkeypatch):
    found, folder = cpu_peak
    monkeypatch.setattr(peak, "_measure", lambda *args: pytest.fail("measured again despite the cache"))
    assert probe_peak("cpu", "fp32", cache_dir=folder) == found
    (saved,) = folder.glob("*.json")
    assert json.loads(saved.read_text())["key"]["threads"] == str(torch.get_num_threads())


def test_another_thread_count_or_a_damaged_cache_is_measured_again(cpu_peak, tmp_path, monkeypatch):
    found, _ = cpu_peak
    measured = []
    monkeypatch.setattr(peak, "_measure", lambda device, precision, dtype: measured.append(precision) or found)
    probe_peak("cpu", "fp32", cache_dir=tmp_path)
    next(tmp_path.glob("*.json")).write_text("{not json")
    probe_peak("cpu", "fp32", cache_dir=tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        probe_peak("cpu", "fp32", cache_dir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert measured == ["fp32"] * 3 and len(list(tmp_path.glob("*.json"))) == 2


def test_an_unknown_precision_is_one_line_naming_the_accepted_ones(tmp_path):
    with pytest.raises(UsageError, match=r"unknown precision 'fp8' for the peak probe; accepted: fp32, fp16, bf16"):
        probe_peak("cpu", "fp8", cache_dir=tmp_path)

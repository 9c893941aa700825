"""The device's achievable peak: probed at a precision, cached per machine, threads and precision."""

from __future__ import annotations

import json

import pytest
import torch

from pytest_edgeprof.cache_integrity import CacheWarning, write_verified
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure import peak
from pytest_edgeprof.measure.device_state import load_beyond
from pytest_edgeprof.measure.peak import DevicePeak, probe_peak


@pytest.fixture(scope="module")
def cpu_peak(tmp_path_factory) -> tuple[DevicePeak, object]:
    folder = tmp_path_factory.mktemp("peaks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(peak, "_busy", lambda: "")  # the cache is tested here, not whether this machine is quiet
        return probe_peak("cpu", "fp32", cache_dir=folder), folder


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(peak, "_busy", lambda: "")


@pytest.mark.serial  # a bound on time or rate: `make test` runs it alone
def test_the_probe_measures_a_gemm_and_a_copy_and_says_how(cpu_peak):
    found, _ = cpu_peak
    assert found.device == "cpu" and found.precision == "fp32"
    assert found.flops_per_s > 1e9 and found.bytes_per_s > 1e8  # any CPU this suite runs on does more
    assert "gemm n=" in found.method and "fp32" in found.method and f"{torch.get_num_threads()} threads" in found.method


def test_the_second_probe_reads_the_cache_without_measuring(cpu_peak, monkeypatch):
    found, folder = cpu_peak
    monkeypatch.setattr(peak, "_measure", lambda *args: pytest.fail("measured again despite the cache"))
    assert probe_peak("cpu", "fp32", cache_dir=folder) == found
    (saved,) = folder.glob("*.json")
    assert json.loads(saved.read_text())["key"]["threads"] == str(torch.get_num_threads())


def test_another_thread_count_or_a_damaged_cache_is_measured_again(cpu_peak, tmp_path, monkeypatch, quiet):
    found, _ = cpu_peak
    measured = []
    monkeypatch.setattr(peak, "_measure", lambda device, precision, dtype: measured.append(precision) or found)
    probe_peak("cpu", "fp32", cache_dir=tmp_path)
    next(tmp_path.glob("*.json")).write_text("{not json")
    with pytest.warns(CacheWarning, match="peak cache entry"):
        probe_peak("cpu", "fp32", cache_dir=tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        probe_peak("cpu", "fp32", cache_dir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert measured == ["fp32"] * 3 and len(list(tmp_path.glob("*.json"))) == 2


def _one_cached_entry(cpu_peak, tmp_path, monkeypatch):
    """The peak found, the probes run (the probe stands in for itself: this is the cache's test), the cached
    entry's file and its JSON."""
    found, _ = cpu_peak
    measured = []
    monkeypatch.setattr(peak, "_measure", lambda device, precision, dtype: measured.append(precision) or found)
    probe_peak("cpu", "fp32", cache_dir=tmp_path)
    (saved,) = tmp_path.glob("*.json")
    return found, measured, saved, json.loads(saved.read_text())


@pytest.mark.parametrize("bad", [0, "fast", -1e12])
def test_a_peak_entry_edited_by_hand_is_named_discarded_and_probed_again(cpu_peak, tmp_path, monkeypatch, quiet, bad):
    """A flops_per_s of 0 or a string would be a ZeroDivisionError or a TypeError in every cell's efficiency."""
    found, measured, saved, entry = _one_cached_entry(cpu_peak, tmp_path, monkeypatch)
    entry["peak"]["flops_per_s"] = bad
    saved.write_text(json.dumps(entry))
    with pytest.warns(CacheWarning, match=f"peak cache entry {saved} is unreadable"):
        assert probe_peak("cpu", "fp32", cache_dir=tmp_path) == found
    assert measured == ["fp32", "fp32"]
    assert json.loads(saved.read_text())["peak"]["flops_per_s"] == found.flops_per_s  # the new probe, cached


@pytest.mark.parametrize("field, bad", [("flops_per_s", 0), ("bytes_per_s", "fast"), ("flops_per_s", None),
                                        ("method", 3)])
def test_a_peak_entry_that_verifies_but_holds_no_peak_is_discarded_and_probed_again(cpu_peak, tmp_path, monkeypatch,
                                                                                    quiet, field, bad):
    """Written by this user's edgeprof (its digest holds), by a version that cached a broken probe."""
    found, measured, saved, entry = _one_cached_entry(cpu_peak, tmp_path, monkeypatch)
    entry["peak"][field] = bad
    write_verified(saved, json.dumps(entry).encode())
    with pytest.warns(CacheWarning, match=f"peak cache entry {saved} is unreadable .{field} {bad!r} is not a"):
        assert probe_peak("cpu", "fp32", cache_dir=tmp_path) == found
    assert measured == ["fp32", "fp32"]


def test_a_probe_on_a_busy_machine_is_used_but_not_cached(cpu_peak, tmp_path, monkeypatch):
    found, _ = cpu_peak
    monkeypatch.setattr(peak, "_measure", lambda device, precision, dtype: found)
    monkeypatch.setattr(peak, "_busy", lambda: "other processes busy (load average 3.9, this run uses 2 threads)")
    busy = probe_peak("cpu", "fp32", cache_dir=tmp_path)
    assert busy.flops_per_s == found.flops_per_s and busy.method.endswith("; not cached: other processes busy "
                                                                          "(load average 3.9, this run uses 2 threads)")
    assert list(tmp_path.iterdir()) == []


def test_load_beyond_the_runs_own_threads_is_what_makes_a_machine_busy():
    assert load_beyond(2.9, cores=2, threads=2) == 0.0 and load_beyond(3.1, cores=2, threads=2) == 1.1


def test_an_unknown_precision_is_one_line_naming_the_accepted_ones(tmp_path):
    with pytest.raises(UsageError, match=r"unknown precision 'fp8' for the peak probe; accepted: fp32, fp16, bf16"):
        probe_peak("cpu", "fp8", cache_dir=tmp_path)


NET = """
from torch import nn

def test_net(edgeprof):
    edgeprof(nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3)), batch_size=2, input_shape=(3, 32, 32),
             name="net")
"""
FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.05", "--benchmark-min-rounds", "3",
        "-p", "no:cacheprovider"]


@pytest.mark.serial  # a bound on time or rate: `make test` runs it alone
def test_each_cell_saves_its_flop_rate_and_efficiency_against_the_peak_in_machine_info(pytester, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    pytester.makepyfile(NET)
    result = pytester.runpytest(*FAST, "--benchmark-json=run.json")
    result.assert_outcomes(passed=1)
    saved = json.loads((pytester.path / "run.json").read_text())
    peak_saved = saved["machine_info"]["edgeprof"]["peak"]["fp32"]
    info = saved["benchmarks"][0]["extra_info"]
    assert info["flops_per_s"] == pytest.approx(info["flops"] / (info["latency_ms_median"] / 1e3))
    assert info["efficiency"] == pytest.approx(info["flops_per_s"] / peak_saved["flops_per_s"])
    assert 0 < info["efficiency"] < 1.5 and "gemm n=" in peak_saved["method"]
    header = next(line for line in result.stdout.lines if line.startswith("cell "))
    assert header.split()[-2:] == ["efficiency", "verdict"]
    row = next(line for line in result.stdout.lines if line.startswith("net-base-b2-32x32"))
    assert f"{info['efficiency'] * 100:.3g} %" in row


def test_an_untimed_run_probes_no_peak_and_saves_no_efficiency(pytester):
    pytester.makepyfile(NET)
    pytester.runpytest(*FAST, "--benchmark-disable", "--journal", "j.jsonl").assert_outcomes(passed=1)
    info = json.loads((pytester.path / "j.jsonl").read_text().splitlines()[-1])["extra_info"]
    assert "flops" in info and "flops_per_s" not in info and "efficiency" not in info

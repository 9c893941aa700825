"""Memory, energy, FLOPs and budgets, through real pytest runs (pytester)."""

import json

import pytest

FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.05", "--benchmark-min-rounds", "3"]

TINY = """
import pytest
from torch import nn

def tiny():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

{marker}
def test_tiny(edgeprof):
    edgeprof(tiny(), batch_size=2, input_shape=(3, 32, 32), name="tiny")
"""


def run_tiny(pytester, tmp_path, *args, marker="", energy=False):
    pytester.makepyfile(TINY.format(marker=marker))
    out = tmp_path / "run.json"
    options = [option for option in FAST if energy is False or option != "--no-energy"]
    result = pytester.runpytest(*options, f"--benchmark-json={out}", *args)
    info = json.loads(out.read_text())["benchmarks"][0]["extra_info"] if out.exists() else None
    return result, info


def test_every_cell_saves_memory_energy_and_flops(pytester, tmp_path):
    result, info = run_tiny(pytester, tmp_path, energy=True)
    result.assert_outcomes(passed=1)
    # conv 3->8, 3x3 over a 30x30 output, batch 2, plus the 8->10 linear layer
    macs = 2 * (8 * 30 * 30 * 3 * 3 * 3 + 8 * 10)
    assert info["macs"] == macs and info["flops"] == 2 * macs
    assert info["params"] == 8 * 3 * 3 * 3 + 8 + 8 * 10 + 10
    assert info["model_bytes"] == info["params"] * 4
    # the cell holds its weights, its input and the conv's 2x8x30x30 float output at least
    assert info["peak_mem_bytes"] >= info["model_bytes"] + 2 * 3 * 32 * 32 * 4 + 2 * 8 * 30 * 30 * 4
    assert info["peak_rss_bytes"] >= 0
    assert info["energy_source"] in {"rapl", "codecarbon-estimate", "nvml-counter", "nvml-power", "jetson-ina3221"}
    if info["energy_j_per_image"] is not None:
        assert info["energy_j_per_image"] > 0 and info["avg_power_w"] > 0
    assert info["outcome"] == "passed"
    assert info["budgets"]["memory"].endswith("GiB")


def test_an_estimate_from_time_is_taken_over_the_timed_rounds_alone(pytester, tmp_path):
    result, info = run_tiny(pytester, tmp_path, energy=True)
    result.assert_outcomes(passed=1)
    if info["energy_source"] != "codecarbon-estimate":
        pytest.skip(f"this machine measures energy ({info['energy_source']}): its source keeps its own window")
    window_s = info["energy_j_per_image"] * info["latency_samples"] * 2 / info["avg_power_w"]
    rounds_s = info["latency_samples"] * info["latency_ms_median"] / 1e3
    assert 0.5 * rounds_s < window_s < 1.0  # the rounds' own time (a 0.05 s ceiling here), not a 3 s window


def test_no_energy_says_energy_was_not_measured(pytester, tmp_path):
    result, info = run_tiny(pytester, tmp_path)
    result.assert_outcomes(passed=1)
    assert info["energy_source"] == "none" and info["energy_j_per_image"] is None
    assert info["energy_note"] == "not measured (--no-energy)"  # the device's capacity is the default memory budget


def test_budget_marker_fails_the_cell_with_one_line_and_saves_the_verdict(pytester, tmp_path):
    result, info = run_tiny(pytester, tmp_path, marker="@pytest.mark.budget(memory='1kB', latency='10s')")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*peak memory * kB > budget 1 kB (tiny-base-b2-32x32 on cpu)",
        "*edgeprof: broken budgets*",
        "cell * broken budget",
        "tiny-base-b2-32x32 * peak memory * kB > budget 1 kB",
    ])
    broken_section = result.stdout.str().split("broken budgets")[1].split("edgeprof: cpu")[0]
    assert "median latency" not in broken_section  # 10 s was met
    assert info["outcome"] == "over-budget"
    verdicts = {v["metric"]: v for v in info["budget_verdicts"]}
    assert verdicts["memory"]["status"] == "over" and verdicts["latency"]["status"] == "within"
    assert info["budgets"] == {"memory": "1kB", "latency": "10s"}


def test_command_line_budget_over_ini_and_marker_over_both(pytester, tmp_path):
    pytester.makeini("[pytest]\nedgeprof_budget = memory=1kB,throughput=1ips\n")
    result, info = run_tiny(pytester, tmp_path, "--budget", "memory=10GB", marker="@pytest.mark.budget(throughput='0.5ips')")
    result.assert_outcomes(passed=1)
    assert info["budgets"] == {"memory": "10GB", "throughput": "0.5ips"}


@pytest.mark.parametrize(
    "args, ini, marker, message",
    [
        (["--budget", "memory=2.6"], "", "", "*--budget/edgeprof_budget:*'2.6'*"),
        (["--budget", "speed=5ms"], "", "", "*unknown budget metric 'speed'*memory*"),
        ([], "edgeprof_budget = latency=fast\n", "", "*edgeprof_budget*'fast'*"),
        ([], "", "@pytest.mark.budget(memory='lots')", "*test_*budget marker*'lots'*"),
        ([], "", "@pytest.mark.budget('2GB')", "*budget marker takes keywords only*"),
    ],
)
def test_bad_budgets_are_usage_errors(pytester, tmp_path, args, ini, marker, message):
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    result, _ = run_tiny(pytester, tmp_path, *args, marker=marker)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


HUNGRY = """
import torch
from torch import nn

class Hungry(nn.Module):
    '''Allocates 200 MB per image: batch 1 fits under the limit the conftest sets, batch 16 does not.'''
    def forward(self, x):
        return torch.ones(x.shape[0], 50_000_000).sum(dim=1)

def test_cells(edgeprof, edgeprof_cell):
    edgeprof(Hungry(), cell=edgeprof_cell)
"""

LIMIT_MEMORY = """
import resource

import torch  # mapped before the limit is set
import torchvision

def pytest_configure(config):
    # 1.5 GB of address space above what the process already maps: the child's own limit
    with open("/proc/self/status") as status:
        vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + 1_500_000_000, resource.RLIM_INFINITY))
"""


def test_out_of_memory_is_a_result_and_larger_batches_are_skipped(pytester, tmp_path):
    pytester.makepyfile(HUNGRY)
    pytester.makeconftest(LIMIT_MEMORY)
    out = tmp_path / "run.json"
    result = pytester.runpytest_subprocess(*FAST, "--models", "resnet18", "--batch-sizes", "1,16,32", "--shapes", "8",
                                           f"--benchmark-json={out}", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "peak memory: out of memory at batch 16 (tried to allocate 3.2 GB) (resnet18-base-b16-8x8 on cpu)",
        "*edgeprof: broken budgets*",
        "resnet18-base-b16-8x8  peak memory: out of memory at batch 16 (tried to allocate 3.2 GB)",
        "*exceeds capacity (b=16 ran out of memory)*",
    ])
    saved = json.loads(out.read_text())
    assert [b["extra_info"]["batch_size"] for b in saved["benchmarks"]] == [1]
    # cells without timings are saved beside pytest-benchmark's, for limits and report to read
    untimed = [(c["extra_info"]["batch_size"], c["extra_info"]["outcome"]) for c in saved["edgeprof"]["untimed_cells"]]
    assert untimed == [(16, "out-of-memory"), (32, "skipped")]


SCRATCH = """
import os
import torch
from torch import nn

class Scratch(nn.Module):
    def forward(self, x):
        scratch = torch.ones(int(os.environ["SCRATCH_FLOATS"]))
        return x.mean() + scratch[0]

def test_scratch(edgeprof):
    edgeprof(Scratch(), batch_size=1, input_shape=(3, 8, 8), name="scratch")
"""


def test_compare_fail_gates_the_run_against_a_saved_one(pytester, monkeypatch):
    pytester.makepyfile(SCRATCH)
    monkeypatch.setenv("SCRATCH_FLOATS", str(1_000_000))
    pytester.runpytest_subprocess(*FAST, "--benchmark-autosave").assert_outcomes(passed=1)
    same = pytester.runpytest_subprocess(*FAST, "--benchmark-compare", "--edgeprof-compare-fail", "memory:5%")
    assert same.ret == 0
    monkeypatch.setenv("SCRATCH_FLOATS", str(4_000_000))
    grown = pytester.runpytest_subprocess(*FAST, "--benchmark-compare=0001", "--edgeprof-compare-fail", "memory:5%")
    assert grown.ret == pytest.ExitCode.TESTS_FAILED
    grown.stdout.fnmatch_lines(["*edgeprof: regressions past --edgeprof-compare-fail*",
                                "scratch-base-b1-8x8: peak memory * -> * past --fail memory:5%*"])


def test_compare_fail_needs_a_run_to_compare_with(pytester):
    pytester.makepyfile(SCRATCH)
    result = pytester.runpytest(*FAST, "--edgeprof-compare-fail", "memory:5%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgeprof-compare-fail needs --benchmark-compare*"])

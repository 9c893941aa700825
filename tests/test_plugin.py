"""The plugin driven through real pytest runs (pytester)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SMALL = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.05", "--benchmark-min-rounds", "3"]

USER_TEST = """
import torch
from torch import nn

def test_tiny(edgeprof):
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    m = edgeprof(net, batch_size=2, input_shape=(3, 32, 32), name="tiny")
    assert m.latency is not None
"""

SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""


def test_options_are_grouped_in_help_with_ini_twins(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["edgeprof: CNN benchmarks on edge devices:", "*--device=DEVICE*"])
    for flag in ("--grid", "--models", "--batch-sizes", "--shapes", "--weights"):
        assert flag in result.stdout.str()
    for ini in ("edgeprof_device", "edgeprof_models", "edgeprof_batch_sizes", "edgeprof_shapes", "edgeprof_grid"):
        assert ini in result.stdout.str()


def test_fixtures_are_documented(pytester):
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines(["edgeprof_device [[]session scope[]] -- *", "edgeprof_model -- *", "edgeprof -- *", "*Device-aware timer*"])


def test_grid_becomes_tests_with_readable_ids(pytester):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--collect-only", "-q", "--device", "cpu", "--models", "resnet18",
                                "--batch-sizes", "1,8", "--shapes", "224,224x160")
    result.stdout.fnmatch_lines([
        "*test_inference[[]resnet18-base-b1-224x224[]]",
        "*test_inference[[]resnet18-base-b8-224x224[]]",
        "*test_inference[[]resnet18-base-b1-224x160[]]",
        "*test_inference[[]resnet18-base-b8-224x160[]]",
        "4 tests collected*",
    ])


def test_study_grid_switch(pytester):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--collect-only", "-q", "--device", "cpu", "--grid", "study")
    result.stdout.fnmatch_lines(["*mobilenet_v3_large-base-b128-112x112*", "72 tests collected*"])


def test_ini_keys_set_the_grid(pytester):
    pytester.makeini("[pytest]\nedgeprof_models = mobilenet_v3_small\nedgeprof_batch_sizes = 2\nedgeprof_shapes = 96\n")
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--collect-only", "-q", "--device", "cpu")
    result.stdout.fnmatch_lines(["*mobilenet_v3_small-base-b2-96x96*", "1 test collected*"])


def test_command_line_overrides_ini(pytester):
    pytester.makeini("[pytest]\nedgeprof_models = mobilenet_v3_small\nedgeprof_batch_sizes = 2\nedgeprof_shapes = 96\n")
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--collect-only", "-q", "--device", "cpu", "--batch-sizes", "4")
    result.stdout.fnmatch_lines(["*mobilenet_v3_small-base-b4-96x96*"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "jetson"], "*--device jetson: this host is not a Jetson*it is *"),
        (["--device", "tpu"], "*unknown --device 'tpu'; accepted: auto, cpu, cuda*"),
        (["--models", "resnt50"], "*unknown model 'resnt50'*did you mean resnet50*"),
        (["--batch-sizes", "0,8"], "*bad batch size '0'*positive integer*"),
        (["--batch-sizes", "two"], "*bad batch size 'two'*"),
        (["--shapes", "224y160"], "*bad input shape '224y160'*224x160*"),
        (["--grid", "huge"], "*unknown --grid 'huge'; accepted: default, study*"),
    ],
)
def test_bad_input_is_one_usage_error(pytester, args, message):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize("value, message", [
    ("1,-2", "*edgeprof_batch_sizes*bad batch size '-2'*"),
    ("1,100000000000000000000", "*edgeprof_batch_sizes*bad batch size '100000000000000000000': expected a positive "
                                "integer like 1 or 32, up to 536870912*"),
])
def test_bad_ini_value_is_a_usage_error(pytester, value, message):
    pytester.makepyfile(SUITE)
    pytester.makeini(f"[pytest]\nedgeprof_batch_sizes = {value}\nedgeprof_models = mobilenet_v3_small\nedgeprof_shapes = 16\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_user_module_is_timed_and_saved_with_design_keys(pytester, tmp_path):
    pytester.makepyfile(USER_TEST)
    out = tmp_path / "run.json"
    result = pytester.runpytest(*SMALL, f"--benchmark-json={out}")
    result.assert_outcomes(passed=1)
    saved = json.loads(out.read_text())
    bench = saved["benchmarks"][0]
    info = bench["extra_info"]
    assert bench["group"] == "tiny"
    assert info["model"] == "tiny" and info["batch_size"] == 2 and info["input_shape"] == [3, 32, 32]
    assert info["device"] == "cpu" and info["latency_timer"] == "perf_counter"
    # the saved median is pytest-benchmark's own median of the same rounds, in ms
    assert info["latency_ms_median"] == pytest.approx(bench["stats"]["median"] * 1e3)
    assert info["latency_samples"] == bench["stats"]["rounds"]
    assert info["latency_ms_median"] <= info["latency_ms_p90"] <= info["latency_ms_p99"]
    assert info["throughput_ips"] == pytest.approx(2 / (info["latency_ms_median"] / 1e3))
    machine = saved["machine_info"]["edgeprof"]
    assert machine["device"] == "cpu" and machine["num_threads"] >= 1 and machine["torch_version"]


def test_suite_cells_saved_and_readable_by_pytest_benchmark_compare(pytester):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*SMALL, "--models", "mobilenet_v3_small", "--batch-sizes", "1,2", "--shapes", "64",
                                "--benchmark-autosave", "--benchmark-storage", str(pytester.path / "store"))
    result.assert_outcomes(passed=2)
    saved = list((pytester.path / "store").rglob("*.json"))
    assert len(saved) == 1
    cells = [b["extra_info"]["model"] + "-b" + str(b["extra_info"]["batch_size"]) for b in json.loads(saved[0].read_text())["benchmarks"]]
    assert cells == ["mobilenet_v3_small-b1", "mobilenet_v3_small-b2"]
    compare = subprocess.run([str(Path(sys.executable).parent / "pytest-benchmark"), "compare", str(saved[0])],
                             capture_output=True, text=True)
    assert compare.returncode == 0, compare.stderr
    assert "mobilenet_v3_small-base-b2-64x64" in compare.stdout


def test_an_explicit_device_is_named_in_the_header(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("--device", "cpu")
    result.stdout.fnmatch_lines(["edgeprof: device cpu (*)", "collected 1 item"])


def test_the_device_follows_collection_when_an_edgeprof_test_is_collected(pytester):
    """Resolving ``auto`` imports torch, which a run of plain tests must not pay for: the header
    leaves it out, and the line comes once a test that uses an edgeprof fixture is collected."""
    pytester.makepyfile("def test_device(edgeprof_device):\n    assert edgeprof_device.name\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["collected 1 item", "edgeprof: device * (*)"])
    result.assert_outcomes(passed=1)


def test_no_device_line_without_edgeprof_tests(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "edgeprof: device" not in result.stdout.str()

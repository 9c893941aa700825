"""Precision and runtime as grid axes, through real pytest runs (pytester)."""

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_plugin_variants import FAST, SUITE, image_folder, saved

from pytest_edgeprof.axes import PRECISIONS, RUNTIMES
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.runs import limits
from pytest_edgeprof.runs.compare import parse_configs
from pytest_edgeprof.runs.saved import load_run


@pytest.fixture(autouse=True)
def own_cache(monkeypatch, tmp_path):
    """Exported and quantized models go to this test's cache, not the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_each_configuration_is_a_cell_with_its_saved_keys(pytester, tmp_path):
    pytester.makepyfile(SUITE)
    folder = image_folder(tmp_path / "val")
    result = pytester.runpytest(*FAST, "--models", "squeezenet1_1", "--batch-sizes", "1", "--shapes", "32",
                                "--precision", "fp32,int8", "--runtime", "eager,onnxruntime,tensorrt",
                                "--eval-data", str(folder), "--eval-limit", "3", "--benchmark-json=run.json", "-rs")
    result.assert_outcomes(passed=4, skipped=2)
    cells = saved(pytester)
    assert sorted(cells) == sorted(f"squeezenet1_1-base{c}-b1-32x32"
                                   for c in ("", "-onnxruntime", "-int8", "-int8-onnxruntime"))
    fp32, int8_ort = cells["squeezenet1_1-base-b1-32x32"], cells["squeezenet1_1-base-int8-onnxruntime-b1-32x32"]
    assert (fp32["precision"], fp32["runtime"], fp32["provider"]) == ("fp32", "eager", "cpu")
    assert fp32["runtime_version"].startswith("torch ")
    assert (int8_ort["precision"], int8_ort["runtime"], int8_ort["provider"]) == ("int8", "onnxruntime", "CPUExecutionProvider")
    assert int8_ort["model_bytes"] < 0.4 * fp32["model_bytes"]
    assert "calibrated on 32 generated images" in int8_ort["quantization"]
    assert all("top1" in info for info in cells.values())  # accuracy per configuration
    # tensorrt on a CPU: said once before the run, each of its cells skipped with the same reason
    result.stdout.fnmatch_lines(["edgeprof: fp32 tensorrt skipped on cpu: TensorRT runs on NVIDIA GPUs; cpu is not one",
                                 "edgeprof: int8 is calibrated on generated images, so its accuracy means nothing*"])
    assert result.stdout.str().count("edgeprof: fp32 tensorrt skipped") == 1
    result.stdout.fnmatch_lines(["SKIPPED * TensorRT runs on NVIDIA GPUs*"])
    # the answers across configurations: the recommendation names how each one fares, compare holds two side by side
    result.stdout.fnmatch_lines(["recommended (best throughput within every budget): squeezenet1_1-base-*",
                                 "  squeezenet1_1 base 32x32: * fits up to b1; * fits up to b1; *"])
    run = load_run(str(pytester.path / "run.json"))
    across = limits.across_deployments(run, limits.recommend(run))
    assert across.count("fits up to b1") == 4 and "tensorrt" not in across  # tensorrt was said once, up front
    assert across in limits.render(run)
    compared = subprocess.run([sys.executable, "-m", "pytest_edgeprof.cli", "compare", "run.json", "run.json",
                               "--configs", "fp32-eager,int8-onnxruntime", "--json"],
                              cwd=pytester.path, capture_output=True, text=True)
    assert compared.returncode == 0, compared.stderr
    cells = json.loads(compared.stdout)["cells"]
    assert [c["id"] for c in cells] == ["squeezenet1_1-base-b1-32x32"]
    memory = cells[0]["metrics"]["peak_mem_bytes"]
    assert memory["b"] < memory["a"]  # int8 holds less than fp32


def test_a_model_a_configuration_cannot_take_is_skipped_with_the_reason_and_the_rest_runs(pytester):
    pytester.makepyfile("""
        import torch
        from torch import nn
        from pytest_edgeprof.measurement import Cell

        class Branchy(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3)

            def forward(self, x):
                y = self.conv(x)
                return y if y.sum() > 0 else -y

        def test_branchy(edgeprof):
            edgeprof(Branchy(), cell=Cell("branchy", "base", 1, (3, 16, 16), "fp32", "onnxruntime"))

        def test_plain(edgeprof):
            edgeprof(Branchy(), cell=Cell("branchy", "base", 1, (3, 16, 16)))
    """)
    result = pytester.runpytest(*FAST, "-rs", "--benchmark-json=run.json")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * branchy at fp32 through onnxruntime: torch.onnx.export cannot export it: *"])
    untimed = json.loads((pytester.path / "run.json").read_text())["edgeprof"]["untimed_cells"]
    assert untimed[0]["extra_info"]["outcome"] == "skipped" and "cannot export" in untimed[0]["extra_info"]["error"]


def test_int8_under_isolate_and_resume_keeps_its_key(pytester):
    pytester.makepyfile(SUITE)
    args = [*FAST, "--models", "squeezenet1_1", "--batch-sizes", "1", "--shapes", "32", "--precision", "int8",
            "--runtime", "onnxruntime", "--isolate"]
    pytester.runpytest(*args, "--benchmark-json=first.json").assert_outcomes(passed=1)
    resumed = pytester.runpytest(*args, "--resume", "--benchmark-json=second.json")
    resumed.assert_outcomes(passed=1)
    first, second = saved(pytester, "first.json"), saved(pytester, "second.json")
    cell = "squeezenet1_1-base-int8-onnxruntime-b1-32x32"
    assert second[cell]["latency_ms_median"] == first[cell]["latency_ms_median"]  # replayed, not measured again
    other = pytester.runpytest(*args, "--resume", "--calib-data", str(image_folder(pytester.path / "calib")),
                               "--benchmark-json=third.json")
    other.assert_outcomes(passed=1)
    assert "first 32 images of" in saved(pytester, "third.json")[cell]["quantization"]  # other images: measured again


@given(st.sampled_from(tuple(PRECISIONS)), st.sampled_from(tuple(RUNTIMES)), st.sampled_from(tuple(PRECISIONS)),
       st.sampled_from(tuple(RUNTIMES)))
def test_configs_parse_two_precision_runtime_pairs(p1, r1, p2, r2):
    assert parse_configs(f"{p1}-{r1}, {p2.upper()}-{r2}") == ((p1, r1), (p2, r2))


@pytest.mark.parametrize("bad", ["fp32-eager", "fp32,int8", "fp8-eager,int8-onnxruntime", "fp32-eager,int8-tvm", ""])
def test_bad_configs_say_what_is_accepted(bad):
    with pytest.raises(UsageError, match="expected two PRECISION-RUNTIME, e.g. fp32-eager,int8-onnxruntime"):
        parse_configs(bad)

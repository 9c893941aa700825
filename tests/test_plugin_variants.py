"""Pruned variants and accuracy in the suite, through real pytest runs (pytester)."""

import json

import numpy as np
import pytest
from PIL import Image

FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3"]

SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""


def image_folder(root, classes=("ant", "bee", "cat"), per_class=2):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def saved(pytester, name="run.json"):
    return {b["param"]: b["extra_info"] for b in json.loads((pytester.path / name).read_text())["benchmarks"]}


def test_pruned_variants_are_cells_with_their_real_flops(pytester, tmp_path):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*FAST, "--models", "mobilenet_v3_small", "--batch-sizes", "1,2", "--shapes", "224",
                                "--prune", "0.25,0.5", "--prune-cache", str(tmp_path / "cache"), "--benchmark-json=run.json")
    result.assert_outcomes(passed=6)
    cells = saved(pytester)
    assert sorted(cells) == sorted(f"mobilenet_v3_small-{v}-b{b}-224x224" for v in ("base", "p25", "p50") for b in (1, 2))
    base = cells["mobilenet_v3_small-base-b2-224x224"]
    for variant, target in (("p25", 0.25), ("p50", 0.5)):
        info = cells[f"mobilenet_v3_small-{variant}-b2-224x224"]
        assert info["prune_target"] == target and abs(info["prune_achieved"] - target) <= 0.01
        # the saved cell's own FLOPs, at the reference size 224, are the target's fraction of base's
        assert abs(1 - info["flops"] / base["flops"] - target) <= 0.01
        assert info["params"] < base["params"]
    assert list((tmp_path / "cache").iterdir())  # written once to the cache


def test_a_model_that_cannot_be_pruned_is_skipped_with_the_reason(pytester, tmp_path):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*FAST, "--models", "shufflenet_v2_x0_5", "--batch-sizes", "1", "--shapes", "32",
                                "--prune", "0.5", "--prune-cache", str(tmp_path / "cache"), "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*shufflenet_v2_x0_5 cannot be pruned: *"])


def test_accuracy_per_model_variant_and_shape_and_top1_budgets(pytester, tmp_path):
    pytester.makepyfile(SUITE)
    folder = image_folder(tmp_path / "val")
    result = pytester.runpytest(*FAST, "--models", "mobilenet_v3_small", "--batch-sizes", "1,2", "--shapes", "32",
                                "--eval-data", str(folder), "--eval-limit", "4", "--budget", "top1=100",
                                "--benchmark-json=run.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*top-1 accuracy * < budget 100 % (mobilenet_v3_small-base-b1-32x32 on cpu)*"])
    cells = saved(pytester)
    one, two = cells["mobilenet_v3_small-base-b1-32x32"], cells["mobilenet_v3_small-base-b2-32x32"]
    assert 0 <= one["top1"] <= one["top5"] <= 100
    assert one["eval_set"].startswith("val: first 4 of 6 images")
    assert (one["top1"], one["top5"]) == (two["top1"], two["top5"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prune", "0.9"], "*--prune/edgeprof_prune:*0.9*"),
        (["--prune", "half"], "*--prune/edgeprof_prune:*half*"),
        (["--prune-method", "random"], "*pruning method 'random' is not known; accepted: magnitude, taylor*"),
        (["--prune-method", "taylor"], "*--prune-method taylor needs --prune-data DIR*"),
        (["--eval-data", "/nonexistent/val"], "*--eval-data/edgeprof_eval_data:*/nonexistent/val*"),
        (["--eval-limit", "0"], "*--eval-limit '0': expected a positive number of images*"),
    ],
)
def test_bad_variant_and_accuracy_options_are_usage_errors(pytester, args, message):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*FAST, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])

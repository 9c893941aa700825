"""``--resume`` replays a cell only when everything that decides what it measures is unchanged (its
cell key); with any of it changed the cell is measured again, and budgets alone re-judge the replay.

Replayed or measured again is told by the saved rounds: a replay saves the journal's rounds exactly,
a new measurement has timings of its own.
"""

from __future__ import annotations

import json

import pytest

FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3",
        "-p", "no:cacheprovider"]

TINY = """
from torch import nn

def test_tiny(edgeprof):
    edgeprof(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), batch_size=1, input_shape=(3, 16, 16), name="net")
"""

ONE_THREAD = """
import torch

def pytest_configure(config):
    config._threads_before = torch.get_num_threads()
    torch.set_num_threads(1)

def pytest_unconfigure(config):
    torch.set_num_threads(config._threads_before)
"""


def _run(pytester: pytest.Pytester, *args: str, name: str = "run") -> dict[str, dict]:
    """Run the suite; the saved benchmarks by test name."""
    out = pytester.path / f"{name}.json"
    pytester.runpytest(*FAST, f"--benchmark-json={out}", *args)
    return {bench["name"]: bench for bench in json.loads(out.read_text())["benchmarks"]}


def _replayed(first: dict, second: dict) -> bool:
    return first["stats"]["data"] == second["stats"]["data"]


@pytest.mark.parametrize(
    "first_args, resume_args, conftest, replayed",
    [
        pytest.param([], [], "", True, id="nothing changed: replayed"),
        pytest.param([], [], ONE_THREAD, False, id="torch threads"),
        pytest.param(["--benchmark-disable"], [], "", False, id="untimed run, then timed"),
    ],
)
def test_resume_measures_again_when_the_run_conditions_changed(pytester, first_args, resume_args, conftest, replayed):
    pytester.makepyfile(TINY)
    first = _run(pytester, *first_args, name="first") if "--benchmark-disable" not in first_args else None
    if first is None:
        pytester.runpytest(*FAST, *first_args).assert_outcomes(passed=1)
        first = {"test_tiny": {"stats": {"data": []}}}
    pytester.makeconftest(conftest)
    second = _run(pytester, "--resume", *resume_args, name="second")
    assert _replayed(first["test_tiny"], second["test_tiny"]) is replayed


TWO_NETWORKS = """
from torch import nn

def test_small(edgeprof):
    edgeprof(nn.Sequential(nn.Conv2d(3, 4, 3)), batch_size=1, input_shape=(3, 32, 32), name="net")

def test_large(edgeprof):
    edgeprof(nn.Sequential(nn.Conv2d(3, 64, 3), nn.Conv2d(64, 64, 3)), batch_size=1, input_shape=(3, 32, 32), name="net")
"""


def test_two_networks_under_one_name_keep_their_own_numbers_on_resume(pytester):
    pytester.makepyfile(TWO_NETWORKS)
    first = _run(pytester, name="first")
    second = _run(pytester, "--resume", name="second")
    for test in ("test_small", "test_large"):
        assert _replayed(first[test], second[test])
        assert second[test]["extra_info"]["flops"] == first[test]["extra_info"]["flops"]
    assert second["test_large"]["extra_info"]["flops"] > 100 * second["test_small"]["extra_info"]["flops"]


def test_budgets_alone_rejudge_the_replayed_numbers(pytester):
    pytester.makepyfile(TINY)
    first = _run(pytester, name="first")
    strict = _run(pytester, "--resume", "--budget", "latency=1us,memory=1kB", name="strict")
    assert _replayed(first["test_tiny"], strict["test_tiny"])
    info = strict["test_tiny"]["extra_info"]
    assert info["outcome"] == "over-budget" and info["budgets"] == {"memory": "1kB", "latency": "1us"}
    assert [v["status"] for v in info["budget_verdicts"]] == ["over", "over"]
    lenient = pytester.runpytest(*FAST, "--resume", "--benchmark-json=lenient.json")
    lenient.assert_outcomes(passed=1)  # the cell that broke a budget passes once the budget is gone
    saved = json.loads((pytester.path / "lenient.json").read_text())["benchmarks"][0]
    assert _replayed(first["test_tiny"], saved) and saved["extra_info"]["outcome"] == "passed"


GRID_SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""
GRID = ["--models", "mobilenet_v3_small", "--batch-sizes", "1", "--shapes", "32"]


def _image_folder(root, classes: int, images: int):
    from PIL import Image

    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(images):
            Image.new("RGB", (40, 40), (40 * c, 20 * i, 100)).save(folder / f"{i}.png")
    return root


def test_eval_data_and_limit_are_part_of_the_key(pytester):
    pytester.makepyfile(GRID_SUITE)
    a, b = _image_folder(pytester.path / "a", 2, 2), _image_folder(pytester.path / "b", 2, 3)
    first = _run(pytester, *GRID, "--eval-data", str(a), name="first")["test_inference[mobilenet_v3_small-base-b1-32x32]"]
    same = _run(pytester, *GRID, "--eval-data", str(a), "--resume", name="same")["test_inference[mobilenet_v3_small-base-b1-32x32]"]
    other = _run(pytester, *GRID, "--eval-data", str(b), "--resume", name="other")["test_inference[mobilenet_v3_small-base-b1-32x32]"]
    limited = _run(pytester, *GRID, "--eval-data", str(b), "--eval-limit", "2", "--resume",
                   name="limited")["test_inference[mobilenet_v3_small-base-b1-32x32]"]
    assert _replayed(first, same)
    assert not _replayed(first, other) and other["extra_info"]["eval_set"] != first["extra_info"]["eval_set"]
    assert not _replayed(other, limited) and "first 2" in limited["extra_info"]["eval_set"]


def test_weights_are_part_of_the_key(pytester):
    import torch
    import torchvision

    pytester.makepyfile(GRID_SUITE)
    weights = pytester.path / "weights.pt"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), weights)
    first = _run(pytester, *GRID, name="first")["test_inference[mobilenet_v3_small-base-b1-32x32]"]
    with_file = _run(pytester, *GRID, "--weights", str(weights), "--resume",
                     name="file")["test_inference[mobilenet_v3_small-base-b1-32x32]"]
    assert not _replayed(first, with_file)


def test_how_a_variant_was_made_is_part_of_the_key(pytester):
    pytester.makepyfile(GRID_SUITE)
    data = _image_folder(pytester.path / "taylor", 2, 2)
    prune = [*GRID, "--prune", "0.3", "--prune-cache", str(pytester.path / "variants")]
    first = _run(pytester, *prune, name="first")
    taylor = _run(pytester, *prune, "--prune-method", "taylor", "--prune-data", str(data), "--resume", name="taylor")
    base, pruned = "test_inference[mobilenet_v3_small-base-b1-32x32]", "test_inference[mobilenet_v3_small-p30-b1-32x32]"
    assert _replayed(first[base], taylor[base])  # the base model is the same whatever prunes the variant
    assert not _replayed(first[pruned], taylor[pruned])
    assert (first[pruned]["extra_info"]["prune_method"], taylor[pruned]["extra_info"]["prune_method"]) == ("magnitude", "taylor")

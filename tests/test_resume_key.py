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
        pytest.param([], ["--latency-ci", "5%"], "", False, id="latency-ci"),
        pytest.param(["--isolate"], ["--isolate"], "", True, id="isolated both times: replayed"),
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


def _key_text(benchmark: dict | None = None, **settings) -> str:
    """The key a run with these settings (and pytest-benchmark options) gives one cell, as the plugin makes it."""
    from pytest_edgeprof.compat.pytest_benchmark import BenchmarkOptions
    from pytest_edgeprof.measurement import Cell
    from pytest_edgeprof.plugin.options import Settings
    from pytest_edgeprof.plugin.session import EdgeprofSession

    session = EdgeprofSession(Settings(device="cpu", **settings), BenchmarkOptions(**(benchmark or {})))
    return session.cell_key("t", Cell("net", "base", 1, (3, 16, 16)), {"model": "net"}, evaluated=False).text


@pytest.mark.parametrize("changed", [
    pytest.param({"benchmark": {"min_rounds": 4}}, id="benchmark-min-rounds"),
    pytest.param({"benchmark": {"max_time_s": 0.03}}, id="benchmark-max-time"),
    pytest.param({"no_energy": True}, id="no-energy"),
    pytest.param({"cooldown": "0.01"}, id="cooldown"),
    pytest.param({"isolate": True}, id="in process, then isolated"),
])
def test_each_setting_that_changes_the_outcome_changes_the_key(changed):
    """The rest of the run-conditions test, on the key alone (each replays or not exactly as the key says)."""
    from pytest_edgeprof.measure.cooldown import parse_cooldown

    if "cooldown" in changed:
        changed = {"cooldown": parse_cooldown(changed["cooldown"])}
    assert _key_text(**changed) != _key_text()
    assert _key_text(**changed) == _key_text(**changed)  # and the same settings give the same key


def test_the_isolated_childs_memory_limit_is_in_the_key():
    assert _key_text(isolate=True, isolate_memory_limit=10**9) != _key_text(isolate=True, isolate_memory_limit=2 * 10**9)


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


def test_energy_measured_or_not_is_part_of_the_key(pytester):
    pytester.makepyfile(TINY)
    without = _run(pytester, name="without")
    with_energy = [arg for arg in FAST if arg != "--no-energy"]
    pytester.runpytest(*with_energy, "--resume", "--benchmark-json=with.json").assert_outcomes(passed=1)
    saved = json.loads((pytester.path / "with.json").read_text())["benchmarks"][0]
    assert not _replayed(without["test_tiny"], saved)


FIXABLE = """
from pathlib import Path
from torch import nn

class Fixable(nn.Conv2d):
    '''Raises while the file BROKEN lies beside this module: a bug, then its fix, the module's code unchanged.'''
    def forward(self, x):
        if Path(__file__).with_name("BROKEN").exists():
            raise ValueError("a bug")
        return super().forward(x)

def test_fixable(edgeprof):
    edgeprof(Fixable(3, 4, 3), batch_size=1, input_shape=(3, 16, 16), name="net")
"""


def test_a_failed_cell_is_measured_again_on_resume(pytester):
    pytester.makepyfile(FIXABLE)
    (pytester.path / "BROKEN").write_text("")
    broken = pytester.runpytest(*FAST)
    broken.assert_outcomes(failed=1)
    broken.stdout.fnmatch_lines(["*ValueError: a bug (net-base-b1-16x16 on cpu)*"])
    (pytester.path / "BROKEN").unlink()
    fixed = pytester.runpytest(*FAST, "--resume")
    fixed.assert_outcomes(passed=1)
    journal = pytester.path / ".benchmarks" / "edgeprof-journal.jsonl"
    assert [json.loads(line)["outcome"] for line in journal.read_text().splitlines()] == ["failed", "passed"]


HUNGRY = """
import torch
from torch import nn

class Hungry(nn.Module):
    '''Allocates 200 MB per image.'''
    def forward(self, x):
        return torch.ones(x.shape[0], 50_000_000).sum(dim=1)

def test_hungry(edgeprof):
    edgeprof(Hungry(), batch_size=1, input_shape=(3, 8, 8), name="hungry")
"""


def test_out_of_memory_under_a_small_limit_is_measured_again_under_a_larger_one(pytester):
    pytester.makepyfile(HUNGRY)
    isolate = ["--isolate", "--benchmark-max-time", "0.000001"]
    small = pytester.runpytest(*FAST, *isolate, "--isolate-memory-limit", "100MB")
    small.assert_outcomes(failed=1)
    small.stdout.fnmatch_lines(["*peak memory: out of memory at batch 1*"])
    pytester.runpytest(*FAST, *isolate, "--isolate-memory-limit", "1GB", "--resume").assert_outcomes(passed=1)


EDITABLE = """
from torch import nn

class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return {inner}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.inner = nn.Conv2d(3, 8, 3), Inner()

    def forward(self, x):
        return {outer}

def test_net(edgeprof):
    edgeprof(Net(), batch_size=1, input_shape=(3, 16, 16), name="net")
"""
LIGHT = {"inner": "self.conv(x)", "outer": "self.inner(self.stem(x))"}


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param({"outer": "sum(self.inner(self.stem(x)) for _ in range(16))"}, id="the module's forward"),
        pytest.param({"inner": "sum(self.conv(x) for _ in range(16))"}, id="a submodule's forward"),
    ],
)
def test_an_edited_forward_is_measured_again(pytester, edit):
    pytester.makepyfile(EDITABLE.format(**LIGHT))
    first = _run(pytester, name="first")
    pytester.makepyfile(EDITABLE.format(**{**LIGHT, **edit}))
    edited = _run(pytester, "--resume", name="edited")
    assert not _replayed(first["test_net"], edited["test_net"])
    assert edited["test_net"]["extra_info"]["flops"] > 10 * first["test_net"]["extra_info"]["flops"]


def _class_from_text(forward_body: str):
    """A module class whose source inspect cannot find (made from a string, as exec or a notebook makes it)."""
    namespace: dict = {"__name__": "notebook"}
    code = f"from torch import nn\nclass Made(nn.Module):\n    def forward(self, x):\n        return {forward_body}\n"
    exec(compile(code, "<made>", "exec"), namespace)
    return namespace["Made"]


def test_a_forward_without_source_is_keyed_by_its_code():
    from pytest_edgeprof.models.identity import module_identity

    light, same, heavy = (_class_from_text(body) for body in ("x * 2", "x * 2", "x * 2 * 3"))
    assert module_identity(light()) == module_identity(same())
    assert module_identity(light()) != module_identity(heavy())

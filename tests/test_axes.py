"""The deployment axes' registry (``axes.py``) is their single source: every list of precisions or runtimes,
every help text, the deployer, the device support and the cell key read it, so adding a runtime is one
entry and its deployer."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
import tomllib
import torch
from torch import nn

import pytest_edgeprof
from pytest_edgeprof.axes import (
    DEFAULT_PRECISION,
    DEFAULT_RUNTIME,
    DEVICE_KINDS,
    PRECISIONS,
    RUNTIMES,
    Runtime,
    check_extras,
    id_tokens,
    precision_help,
    runtime_help,
    torch_dtype,
)
from pytest_edgeprof.device import cpu_profile
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.deployed import eager
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.models.deploy import support
from pytest_edgeprof.models.deploy.deployer import Deployer
from pytest_edgeprof.models.grid import Grid, parse_precisions, parse_runtimes
from pytest_edgeprof.plugin.options import OPTIONS
from pytest_edgeprof.runs.compare import parse_configs

PACKAGE = Path(pytest_edgeprof.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def _listed_names(help_text: str) -> list[str]:
    """The names a ``comma list of ... from a (note), b, c (note)`` help lists, in order."""
    listing = re.sub(r"\([^)]*\)", "", help_text.split(" from ", 1)[1]).split(";")[0]  # notes dropped
    return [item.strip() for item in listing.split(",")]


@pytest.mark.parametrize("option, registry", [("precisions", PRECISIONS), ("runtimes", RUNTIMES)])
def test_the_help_lists_exactly_the_registrys_names(option: str, registry: dict) -> None:
    assert _listed_names(OPTIONS[option].help) == list(registry)


def test_runtime_help_promises_only_what_exists() -> None:
    text = runtime_help()
    assert "torch-tensorrt" not in text  # tensorrt runs through ONNX Runtime's TensorRT provider
    assert "eager (default)" in text and "onnxruntime (needs pytest-edgeprof[onnx])" in text
    assert precision_help().startswith("comma list of precisions from fp32 (default), fp16, bf16, int8 (")


def test_pytest_help_shows_the_registrys_texts(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    flat = " ".join(result.stdout.str().split())
    assert "ONNX Runtime's TensorRT provider" in flat and "torch-tensorrt" not in flat


@pytest.mark.parametrize("name", RUNTIMES)
def test_every_runtime_has_an_importable_deployer(name: str) -> None:
    deploy = RUNTIMES[name].deploy_function()
    assert list(inspect.signature(deploy).parameters) == ["module", "cell", "device", "identity", "deployer"]


@pytest.mark.parametrize("name", RUNTIMES)
def test_every_runtime_says_why_for_each_device_and_precision_it_does_not_run(name: str) -> None:
    runtime = RUNTIMES[name]
    assert set(runtime.precisions) <= set(DEVICE_KINDS) and runtime.precisions
    for kind in DEVICE_KINDS:
        for precision in PRECISIONS:
            refusal = runtime.refusal(kind, precision)  # a KeyError: a device or precision left unexplained
            assert refusal is None or refusal.strip()


@pytest.mark.parametrize("name", PRECISIONS)
def test_every_precision_names_a_torch_dtype_and_a_peak_probe_that_exist(name: str) -> None:
    from pytest_edgeprof.measure import peak

    precision = PRECISIONS[name]
    assert isinstance(torch_dtype(name), torch.dtype)
    assert precision.bytes_per_element == (1 if name == "int8" else torch_dtype(name).itemsize)
    if precision.peak_key is not None:
        assert peak._probed_dtype(precision.peak_key) == torch_dtype(name)


def test_the_extras_are_pyprojects_and_install_the_modules_probed() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    extras = {runtime.extra for runtime in RUNTIMES.values() if runtime.extra}
    extras |= {extra for runtime in RUNTIMES.values() for extra in runtime.precision_extras.values()}
    for extra in extras:
        packages = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in declared[extra.name]}
        assert packages == set(extra.modules), extra.name


def test_the_onnx_runtimes_put_onnxruntimes_version_in_the_cell_key() -> None:
    import onnxruntime

    expected = {"onnxruntime": onnxruntime.__version__}  # as the keys of journals written before the registry
    assert RUNTIMES["onnxruntime"].key_parts() == RUNTIMES["tensorrt"].key_parts() == expected
    assert RUNTIMES["eager"].key_parts() == {}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cell_ids_show_the_registrys_tokens_and_leave_the_defaults_out(precision: str, runtime: str) -> None:
    cell = Cell("resnet18", "base", 8, (3, 224, 160), precision, runtime)
    assert cell.id == "-".join(["resnet18", "base", *id_tokens(precision, runtime), "b8", "224x160"])
    assert (precision, runtime) != (DEFAULT_PRECISION, DEFAULT_RUNTIME) or cell.id == "resnet18-base-b8-224x160"


def test_no_module_but_the_registry_lists_the_axes() -> None:
    """A tuple, list or set naming two precisions or two runtimes anywhere else would be a second source."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "axes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if len(names & set(PRECISIONS)) > 1 or len(names & set(RUNTIMES)) > 1:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {sorted(names)}")
    assert found == []


# --- a runtime added to the registry is taken everywhere --------------------------------------------


def deploy_toy(module: nn.Module, cell: Cell, device: str, identity: dict[str, str], deployer: Deployer):
    deployed = eager(module, device)
    TOY_CALLS.append(cell.id)
    return deployed


TOY_CALLS: list[str] = []
TOY = Runtime("toy", f"{__name__}:deploy_toy", {"cpu": tuple(PRECISIONS)},
              {"cuda": "toy runs on CPUs; {device} is not one"}, note="a test's runtime", id_token="toyrt")


@pytest.fixture()
def toy(monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setitem(RUNTIMES, "toy", TOY)
    TOY_CALLS.clear()
    return TOY


@pytest.mark.parametrize("part", ["options", "grid", "compare", "support", "extras", "cell", "deployer"])
def test_a_runtime_added_to_the_registry_is_taken_by(toy: Runtime, part: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if part == "options":
        assert "toy (a test's runtime)" in runtime_help()
    elif part == "grid":
        assert parse_runtimes("eager,TOY") == ("eager", "toy") and parse_precisions("fp32") == ("fp32",)
        assert Grid(("m",), (1,), ((3, 8, 8),), runtimes=("toy",)).cells()[0].id == "m-base-toyrt-b1-8x8"
    elif part == "compare":
        assert parse_configs("fp32-eager,fp16-toy") == (("fp32", "eager"), ("fp16", "toy"))
    elif part == "support":
        monkeypatch.setattr(support, "cpu_flags", lambda: frozenset())  # flags unknown: no precision ruled out
        assert support.unsupported(cpu_profile(), "fp32", "toy") is None
    elif part == "extras":
        check_extras(("fp32",), ("toy",))
    elif part == "cell":
        assert Cell.from_extra_info({"model": "m", "variant": "base", "batch_size": 1, "input_shape": [3, 8, 8],
                                     "runtime": "toy"}).runtime == "toy"
    else:
        cell = Cell("m", "base", 1, (3, 8, 8), "fp32", "toy")
        Deployer().deploy(nn.Conv2d(3, 2, 3), cell, "cpu", {"module": "conv"})
        assert TOY_CALLS == [cell.id]


def test_an_unknown_runtime_is_refused_with_the_registrys_names() -> None:
    with pytest.raises(UsageError, match=f"accepted: {', '.join(RUNTIMES)}$"):
        parse_runtimes("tvm")

"""`edgeprof flops` and the subcommand registry, driven through cli.main and once as a real process."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edgeprof import cli
from pytest_edgeprof.measure.flops import count_model_cost

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert cli.main(["flops", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_one_object_per_model_with_plain_integers(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "resnet18", "mobilenet_v3_small", "--shape", "64", "--batch", "2")
    assert [row["model"] for row in rows] == ["resnet18", "mobilenet_v3_small"]
    for row in rows:
        assert set(row) == {"model", "shape", "batch", "flops", "macs", "params", "flops_method"}
        assert row["shape"] == [3, 64, 64] and row["batch"] == 2
        assert all(type(row[key]) is int for key in ("batch", "flops", "macs", "params"))
        expected = count_model_cost(row["model"], (3, 64, 64), batch_size=2)
        assert (row["flops"], row["macs"], row["params"]) == (expected.flops, expected.macs, expected.params)


def test_study_models_give_the_published_gmacs(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "vgg16", "resnet50", "mobilenet_v3_large")
    assert [(row["model"], row["shape"], round(row["macs"] / 1e9, 2)) for row in rows] == [
        ("vgg16", [3, 224, 224], 15.47),
        ("resnet50", [3, 224, 224], 4.09),
        ("mobilenet_v3_large", [3, 224, 224], 0.22),
    ]


def test_each_model_defaults_to_its_own_input_size(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "squeezenet1_1", "inception_v3")
    assert [row["shape"] for row in rows] == [[3, 224, 224], [3, 299, 299]]


def test_shape_is_height_by_width_and_names_are_resolved(capsys: pytest.CaptureFixture[str]) -> None:
    (row,) = run_json(capsys, "ResNet18", "--shape", "64x48")
    assert (row["model"], row["shape"], row["batch"]) == ("resnet18", [3, 64, 48], 1)


def test_table_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flops", "resnet18", "--shape", "224"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "input", "batch", "GMACs", "GFLOPs", "params", "(M)"]
    assert lines[2].split() == ["resnet18", "3x224x224", "1", "1.814", "3.628", "11.69"]


@pytest.mark.parametrize(
    "argv, named",
    [
        (["flops", "resnet5O"], "'resnet5O'"),
        (["flops", "resnet18", "--shape", "224x"], "'224x'"),
        (["flops", "resnet18", "--shape", "3x224x224"], "'3x224x224'"),
        (["flops", "resnet18", "--batch", "0"], "'0'"),
        (["flops", "resnet18", "--batch", "two"], "'two'"),
        (["flops", "alexnet", "--shape", "16"], "3x16x16"),
        (["flops"], "MODEL"),
        (["frobnicate"], "'frobnicate'"),
        ([], "COMMAND"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], named: str) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("edgeprof: error: ")
    assert named in lines[0]


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flops", "--help"]) == 0
    assert "--shape" in capsys.readouterr().out


def test_help_lists_the_commands_in_the_order_a_user_needs_them(capsys: pytest.CaptureFixture[str]) -> None:
    """Not in the order their modules sort or are imported (an import sorter must not reorder the help)."""
    assert cli.main(["frobnicate"]) == 2
    assert ("(choose from 'flops', 'predict', 'prune', 'compare', 'limits', 'emulate-check', 'report', 'layers', 'capacity',"
            " 'store', 'history', 'check', 'dashboard', 'export')"
            in capsys.readouterr().err)
    assert set(cli.HELP_ORDER) == set(cli.SUBCOMMANDS)


def test_a_registered_subcommand_plugs_in(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("word")

    def run(args: argparse.Namespace) -> int:
        print(args.word.upper())
        return 0

    monkeypatch.setitem(cli.SUBCOMMANDS, "shout", cli.Subcommand("shout", "say it louder", configure, run))
    assert cli.main(["shout", "hello"]) == 0
    assert capsys.readouterr().out == "HELLO\n"


def test_module_runs_as_a_program() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest_edgeprof.cli", "flops", "mobilenet_v3_small", "--shape", "32", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert (row["model"], row["shape"]) == ("mobilenet_v3_small", [3, 32, 32])

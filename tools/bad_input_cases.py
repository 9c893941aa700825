"""Bad input, everywhere: the inventory of what was tried, and the one line and exit code each gives.

Every option, ini key, marker argument, budget string, ``edgeprof`` argument and file the tool reads
was tried with bad values. Each row below is one try: the input, a fragment of the ONE line it must
give (pytest: the ``ERROR:`` line, or the ``Exit:`` line of a run stopped mid-way; edgeprof: the
``edgeprof:`` line on stderr), and the exit code (pytest 4 = usage error; edgeprof 2 = usage error,
1 = a valid request the tool cannot carry out, as ``edgeprof prune`` answers an unprunable model).
Never a traceback. A bad value found mid-run stops the run and keeps what was measured before it
(the ``keeps`` rows check the journal and the saved run).

tests/test_bad_input.py runs ``PYTEST_CASES`` and ``CLI_CASES``; ``tools/bad_input_table.py`` runs
every row (these and ``COVERED_ELSEWHERE``) and prints the table in docs/bad-input.md. Tries that other
modules already test are listed in ``COVERED_ELSEWHERE`` with the test that covers them, and are not
repeated here:

| input | tested in |
| --- | --- |
| --device jetson / tpu, --models resnt50, --batch-sizes 0,8 / two, --shapes 224y160, --grid huge, ini edgeprof_batch_sizes | test_plugin.py::test_bad_input_is_one_usage_error, test_bad_ini_value_is_a_usage_error |
| --budget memory=2.6 / speed=5ms, ini latency=fast, budget marker 'lots' / positional | test_plugin_budgets.py::test_bad_budgets_are_usage_errors |
| --device ssh://root@host:99999, --ssh-config missing, an unreachable board | test_remote.py::test_bad_board_input_is_one_line |
| --edgeprof-compare-fail without --benchmark-compare | test_plugin_budgets.py::test_compare_fail_needs_a_run_to_compare_with |
| --emulate jetson-nano --precision bf16, --emulate host --precision int8 | test_plugin_emulate.py::test_a_precision_the_target_has_no_figures_for_is_a_usage_error_before_anything_runs |
| --prune 0.9 / half, --prune-method random / taylor without data, --eval-data missing, --eval-limit 0 | test_plugin_variants.py::test_bad_variant_and_accuracy_options_are_usage_errors |
| --journal FOLDER; a journal line cut off by a kill, with --resume | test_journal.py, test_resume_isolate.py::test_resume_ignores_a_cut_off_line_and_measures_that_cell |
| a journal of mode 000 with --resume (not as root, who reads it), a journal held by another run, a journal's lock that cannot be written (a full disk) | test_journal_safety.py |
| budget strings (units, bare numbers, negative, any text) | test_budgets.py (hypothesis) |
| labgrid place specs (labgrid:, labgrid:Board=x, labgrid:a=1,a=2, any text); a place missing, without a NetworkService, held by another user; an unreachable coordinator; labgrid not installed | test_labgrid_place.py |
| shapes, batch sizes (any text) | test_zoo_parse.py, test_grid.py |
| edgeprof flops: unknown model, bad --shape / --batch, no model, unknown subcommand | test_cli_flops.py::test_bad_input_is_one_line_on_stderr_and_exit_2 |
| edgeprof prune --target 0.9, taylor without --data, --method random | test_prune.py::test_cli_usage_errors |
| edgeprof predict: unknown --target / model / --precision / --runtime / --power-mode, a precision the target lacks (int8 on a jetson-nano), int8 on eager, no --target | test_predict.py::test_bad_input_is_one_line_and_exit_2 |
| edgeprof compare --fail specs, a broken JSON run | test_compare.py |
| edgeprof limits --objective the run lacks / unknown | test_limits.py::test_objective_the_run_lacks_is_a_usage_error |
| edgeprof report of a missing file | test_report.py::test_bad_run_is_a_usage_error |
| edgeprof dashboard --store URL in a build without the results store; neither runs nor --store | test_dashboard.py::test_bad_input_is_one_line |
| edgeprof export --format csv, --out FOLDER | test_export_bmf.py::test_bad_input_is_one_line_and_exit_2 |
| edgeprof layers: unknown model, --variant half, --top 0, --shape 3x, --device tpu | test_layers.py::test_bad_input_exits_2_with_one_line |
| saved runs: not JSON, no 'benchmarks', foreign cells, bad metric values, binary garbage | test_results.py |
| eval folders and class-index files: missing, a file, no classes, no images, bad JSON, unknown folder | test_accuracy.py::test_bad_folders_and_class_indices_are_one_line_usage_errors |
| weights files: corrupt, unknown name, missing, not in the torch cache | test_zoo.py |
| variant cache: corrupt entry (warned, rebuilt), a pickle that would run code (refused) | test_prune.py::test_corrupt_cache_entry_is_named_and_rebuilt, test_loading_never_unpickles_foreign_objects |
| variant cache: a valid variant file edgeprof did not write there (no digest: warned, rebuilt) | test_prune.py::test_a_variant_file_edgeprof_did_not_write_there_is_rebuilt_not_loaded |
| deployed-model cache: a crafted .pt2 whose weight is a pickle that would run code (not loaded: warned, rebuilt, measured) | test_cache_integrity.py::test_a_crafted_pt2_in_the_cache_runs_no_code_and_the_cell_is_measured_after_a_rebuild |
| deployed-model cache: a cached .onnx / .pt2 cut short (warned, rebuilt, measured, never skipped) | test_cache_integrity.py::test_a_cached_model_cut_short_is_named_rebuilt_and_measured |
| deployed-model cache below a file, or read-only (one line before any cell); a full disk while exporting (one line, exit 4) | test_cache_integrity.py |
| the cache key readable by others; a cache file signed under another key or another name | test_cache_integrity.py::test_the_key_is_this_users_alone, test_a_file_is_read_back_only_as_written_and_under_its_own_name |
| peaks cache: an entry edited by hand or holding no peak (flops_per_s 0, a string, None: warned, probed again) | test_peak.py::test_a_peak_entry_edited_by_hand_is_named_discarded_and_probed_again, test_a_peak_entry_that_verifies_but_holds_no_peak_is_discarded_and_probed_again |
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from pytest_edgeprof.cli import main
from pytest_edgeprof.runs.journal import FORMAT

FAST = ("--device", "cpu", "--no-energy", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3",
        "-p", "no:cacheprovider")
GRID = ("--models", "mobilenet_v3_small", "--batch-sizes", "1", "--shapes", "16")

SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""
MARKED_SUITE = """
import pytest

@pytest.mark.budget({budget})
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""
USER_SUITE = """
from torch import nn

def test_mine(edgeprof):
    edgeprof(nn.Conv2d(3, 4, 3), batch_size={batch}, input_shape={shape})
"""


@dataclass(frozen=True)
class Case:
    """One try. ``{name}`` in argv, ini, fragment and env is a path from :func:`make_files`."""

    tried: str  # the input as a user would write it
    argv: tuple[str, ...]  # pytest: after FAST and GRID (later options win); edgeprof: the whole command
    fragment: str  # the one line holds this
    code: int
    ini: str = ""  # pytest: lines of the [pytest] section
    suite: str = SUITE  # pytest: the test module
    env: tuple[tuple[str, str], ...] = ()
    keeps: str = ""  # pytest: a cell measured before the bad input, kept in the journal and {kept_json}
    absent: str = ""  # a file that must not exist afterwards (nothing in the input was executed)
    where: str = ""  # COVERED_ELSEWHERE: the test that covers it

    @property
    def pytest(self) -> bool:
        return self.argv[:1] != ("edgeprof",)

    def formatted(self, files: dict[str, Path]) -> Case:
        def fill(text: str) -> str:
            return text.format(**files)

        return Case(self.tried, tuple(fill(a) for a in self.argv), fill(self.fragment), self.code, fill(self.ini),
                    self.suite, tuple((k, fill(v)) for k, v in self.env), self.keeps, fill(self.absent), self.where)


def _pytest_case(tried: str, *argv: str, fragment: str, code: int = 4, **kw: Any) -> Case:
    return Case(tried, argv, fragment, code, **kw)


def _cli_case(command: str, fragment: str, code: int = 2, **kw: Any) -> Case:
    return Case(command, ("edgeprof", *command.split()[1:]), fragment, code, **kw)


# --- pytest: options, ini keys, markers, and what a run reads -------------------------------------

PYTEST_CASES = [
    _pytest_case("--isolate-memory-limit 0B", "--isolate-memory-limit", "0B",
                 fragment="--isolate-memory-limit/edgeprof_isolate_memory_limit: bad size '0B'"),
    _pytest_case("--isolate --isolate-memory-limit 100000000TB", "--isolate", "--isolate-memory-limit", "100000000TB",
                 fragment="--isolate-memory-limit/edgeprof_isolate_memory_limit: bad size '100000000TB': expected a "
                 "positive number and its unit up to 4 EiB"),
    _pytest_case("ini edgeprof_isolate_memory_limit = 2.6", ini="edgeprof_isolate_memory_limit = 2.6",
                 fragment="edgeprof_isolate_memory_limit: bad size '2.6'"),
    _pytest_case("ini edgeprof_resume = maybe", ini="edgeprof_resume = maybe",
                 fragment="edgeprof_resume: invalid truth value 'maybe'; accepted: true, false"),
    _pytest_case("--journal {text}/j.jsonl", "--journal", "{text}/j.jsonl",
                 fragment="{text} is a file, so nothing can be written below it"),
    _pytest_case("--journal {inf_run} (a file, but no journal)", "--journal", "{inf_run}",
                 fragment="not an edgeprof journal"),
    _pytest_case("--prune 0.5 --prune-cache {text}/cache", "--prune", "0.5", "--prune-cache", "{text}/cache",
                 fragment="--prune-cache {text}/cache: {text} is a file"),
    _pytest_case("--prune-data {missing}", "--prune-data", "{missing}", fragment="--prune-data {missing}: no such folder"),
    _pytest_case("--board-python 'python3; reboot'", "--board-python", "python3; reboot",
                 fragment="bad --board-python 'python3; reboot': expected the board's Python as a command or a path"),
    _pytest_case("--device labgrid:", "--device", "labgrid:", fragment="bad labgrid place 'labgrid:': expected "
                 "labgrid:PLACE or labgrid:TAG=VALUE[,TAG=VALUE]"),
    _pytest_case("--device labgrid:Board=x", "--device", "labgrid:Board=x",
                 fragment="bad labgrid place 'labgrid:Board=x': expected labgrid:PLACE or labgrid:TAG=VALUE[,TAG=VALUE]"),
    _pytest_case("--board-wait soon", "--board-wait", "soon",
                 fragment="--board-wait/edgeprof_board_wait: bad --board-wait 'soon': expected seconds, 0 or more"),
    _pytest_case("--eval-limit ²", "--eval-limit", "²", fragment="--eval-limit '²': expected a positive number of images"),
    _pytest_case("--eval-data {superscript_index}", "--eval-data", "{superscript_index}",
                 fragment="entry '²': 'ant' is not index -> folder"),
    _pytest_case("--eval-data {deep_index}", "--eval-data", "{deep_index}",
                 fragment="class_index.json: cannot read it (maximum recursion depth exceeded"),
    _pytest_case("--precision fp8", "--precision", "fp8",
                 fragment="--precision/edgeprof_precision: --precision 'fp8': unknown 'fp8'; accepted: fp32, fp16, bf16, int8"),
    _pytest_case("ini edgeprof_runtime = eager,", ini="edgeprof_runtime = eager,",
                 fragment="--runtime 'eager,': empty item; expected a comma list from eager, compile, onnxruntime, tensorrt"),
    _pytest_case("--precision int8 --calib-data {missing}", "--precision", "int8", "--calib-data", "{missing}",
                 fragment="--calib-data {missing}: no such folder"),
    _pytest_case("--weights {missing}.pth", "--weights", "{missing}.pth", fragment="no such file"),
    _pytest_case("--weights IMAGENET9K", "--weights", "IMAGENET9K",
                 fragment="not a weights name of mobilenet_v3_small; accepted: random, DEFAULT, IMAGENET1K_V1"),
    _pytest_case("--weights DEFAULT (not in the torch cache)", "--weights", "DEFAULT", env=(("TORCH_HOME", "{folder}"),),
                 fragment="weights are not in the torch cache"),
    _pytest_case("--models vgg16 --shapes 16", "--models", "vgg16",
                 fragment="--shapes: vgg16 cannot take input shape 3x16x16"),
    _pytest_case("--models vit_b_32 --shapes 32x16", "--models", "vit_b_32", "--shapes", "32x16",
                 fragment="vit_b_32 takes square inputs only"),
    _pytest_case("--benchmark-compare={deep} --edgeprof-compare-fail latency:10%", "--benchmark-compare={deep}",
                 "--edgeprof-compare-fail", "latency:10%", fragment="--edgeprof-compare-fail: {deep} is not a pytest-benchmark run"),
    _pytest_case("--benchmark-compare={inf_run} --edgeprof-compare-fail latency:10", "--benchmark-compare={inf_run}",
                 "--edgeprof-compare-fail", "latency:10", fragment="bad --fail item 'latency:10'"),
    _pytest_case("--benchmark-compare={fp16_run} --edgeprof-compare-fail latency:10% (no cell in common)",
                 "--benchmark-compare={fp16_run}", "--edgeprof-compare-fail", "latency:10%",
                 fragment="and this run (fp32-eager) have no cell in common, so nothing is compared; to compare fp16-eager "
                 "with fp32-eager, run edgeprof compare A B --configs fp16-eager,fp32-eager"),
    _pytest_case("@pytest.mark.budget(memory=None)", suite=MARKED_SUITE.format(budget="memory=None"),
                 fragment="budget marker: bad memory budget None"),
    _pytest_case("@pytest.mark.budget(latency=50)", suite=MARKED_SUITE.format(budget="latency=50"),
                 fragment="bad latency budget 50: a number needs its unit"),
    _pytest_case("edgeprof(model, batch_size=0, input_shape=(3, 8, 8))", suite=USER_SUITE.format(batch=0, shape=(3, 8, 8)),
                 fragment="batch size 0 is not a positive integer"),
    _pytest_case("--batch-sizes 1,100000000000000000000", "--batch-sizes", "1,100000000000000000000",
                 fragment="bad batch size '100000000000000000000': expected a positive integer like 1 or 32, up to 536870912"),
    _pytest_case("--shapes 100000000000000000000", "--shapes", "100000000000000000000",
                 fragment="bad input shape '100000000000000000000': expected a size like 224 or HxW like 224x160 "
                 "(positive integers up to 32768)"),
    _pytest_case("edgeprof(model, batch_size=10**20, input_shape=(3, 8, 8))",
                 suite=USER_SUITE.format(batch=10**20, shape=(3, 8, 8)),
                 fragment="batch size 100000000000000000000 is not a positive integer up to 536870912"),
    _pytest_case("edgeprof(model, batch_size=1, input_shape=(3, 10**20, 8))",
                 suite=USER_SUITE.format(batch=1, shape=(3, 10**20, 8)),
                 fragment="input shape (3, 100000000000000000000, 8) is not (C, H, W) with three positive integers"),
    _pytest_case("edgeprof(model, batch_size=1, input_shape=(8, 8))", suite=USER_SUITE.format(batch=1, shape=(8, 8)),
                 fragment="input shape (8, 8) is not (C, H, W) with three positive integers"),
    # Found only mid-run: the run stops, what was measured before stays.
    _pytest_case("--models mobilenet_v3_small,squeezenet1_1 --shapes 32 --weights {mobilenet_pth}",
                 "--models", "mobilenet_v3_small,squeezenet1_1", "--shapes", "32", "--weights", "{mobilenet_pth}",
                 "--benchmark-json={kept_json}", fragment="--weights {mobilenet_pth}: not a state dict of squeezenet1_1",
                 keeps="mobilenet_v3_small-base-b1-32x32"),
    _pytest_case("--eval-data {broken_images} --shapes 32", "--eval-data", "{broken_images}", "--shapes", "32",
                 fragment="broken.jpg: Pillow cannot identify it"),
    _pytest_case("--eval-data {far_index} --shapes 32", "--eval-data", "{far_index}",
                 "--shapes", "32", fragment="label 5000 is outside the model's 1000 classes"),
    _pytest_case("--isolate --weights {inf_run} (read in the child)", "--isolate", "--weights", "{inf_run}",
                 fragment="cannot read weights from {inf_run} (not a weights-only torch file"),
    _pytest_case("--resume --journal {typed_journal}", "--resume", "--journal", "{typed_journal}",
                 fragment="typed.jsonl:1: unreadable journal line ignored", code=0),
    _pytest_case("--resume --journal {pipe}", "--resume", "--journal", "{pipe}",
                 fragment="--journal {pipe}: not a regular file"),
    _pytest_case("--resume --journal {lock_is_folder}/j.jsonl", "--resume", "--journal", "{lock_is_folder}/j.jsonl",
                 fragment="cannot write the journal's lock {lock_is_folder}/j.jsonl.lock: Is a directory"),
    _pytest_case("--edgeprof-store mysql://db/runs", "--edgeprof-store", "mysql://db/runs",
                 fragment="--edgeprof-store/edgeprof_store: bad store URL 'mysql://db/runs': unknown scheme 'mysql'; "
                 "accepted: sqlite:///PATH (a file) or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"),
    _pytest_case("ini edgeprof_store = sqlite://", ini="edgeprof_store = sqlite://",
                 fragment="bad store URL 'sqlite://': a SQLite URL names a file after three slashes"),
    _pytest_case("--edgeprof-store sqlite:///{folder}", "--edgeprof-store", "sqlite:///{folder}",
                 fragment="{folder} is a folder; give a file path"),
    _pytest_case("--edgeprof-store postgresql://u:secret@127.0.0.1:1/runs (no server)", "--edgeprof-store",
                 "postgresql://u:secret@127.0.0.1:1/runs",
                 fragment="--edgeprof-store: store postgresql://u:***@127.0.0.1:1/runs: cannot connect and create its tables"),
    _pytest_case("--edgeprof-store sqlite:///db --edgeprof-machine ''", "--edgeprof-store", "sqlite:///db",
                 "--edgeprof-machine", " ", fragment="--edgeprof-machine/edgeprof_machine: bad machine name ' '"),
    Case("XDG_CACHE_HOME={text} pytest --runtime onnxruntime", ("--runtime", "onnxruntime"), code=4,
         fragment="the deployed-model cache {text}/pytest-edgeprof/deployed: {text} is a file", env=(("XDG_CACHE_HOME", "{text}"),)),
]

# --- edgeprof: every subcommand ---------------------------------------------------------------------

PRUNE = "edgeprof prune resnet18 --target 0.5"
LAYERS = "edgeprof layers mobilenet_v3_small --shape 16 --runs 1"
CAPACITY = "edgeprof capacity mobilenet_v3_small --shape 16 --memory 1GB --device cpu"

CLI_CASES = [
    _cli_case("edgeprof flops vit_b_32 --shape 32x16", "vit_b_32 takes square inputs only"),
    _cli_case("edgeprof flops resnet18 --batch ²", "argument --batch: bad batch size '²'"),
    _cli_case("edgeprof flops resnet18 --batch 100000000000000000000",
              "argument --batch: bad batch size '100000000000000000000': expected a positive integer like 1 or 32, up to 536870912"),
    _cli_case(f"{PRUNE} --data-limit 0", "argument --data-limit: bad count '0'"),
    _cli_case(f"{PRUNE} --cache-dir {{text}}", "--cache-dir {text}: not a folder"),
    _cli_case(f"{PRUNE} --cache-dir {{text}}/cache", "{text} is a file, so nothing can be written below it"),
    _cli_case(f"{PRUNE} --out {{folder}}", "--out {folder}: is a folder; give a file path"),
    _cli_case(f"{PRUNE} --weights IMAGENET9K", "not a weights name of resnet18"),
    _cli_case(f"{PRUNE} --method taylor --data {{missing}}", "--data {missing}: no such folder"),
    _cli_case(f"{PRUNE} --data {{folder}}", "--data is used by --method taylor only"),
    _cli_case("edgeprof compare {deep} {deep}", "{deep} is not a pytest-benchmark run: JSON nested too deeply"),
    _cli_case("edgeprof compare {inf_run} {inf_run}", "not an edgeprof cell (missing or bad 'batch_size')"),
    _cli_case("edgeprof compare {deep} {deep} --configs fp32-eager",
              "--configs 'fp32-eager': expected two PRECISION-RUNTIME, e.g. fp32-eager,int8-onnxruntime"),
    _cli_case("edgeprof compare {plain_run} {fp16_run} --fail latency:10%",
              "(fp32-eager) and {fp16_run} (fp16-eager) have no cell in common, so nothing is compared; to compare "
              "fp32-eager with fp16-eager, run edgeprof compare A B --configs fp32-eager,fp16-eager"),
    _cli_case("edgeprof compare {half_run} {half_run}", "not an edgeprof cell (missing or bad 'batch_size')"),
    _cli_case("edgeprof compare {null_model_run} {null_model_run}", "not an edgeprof cell (missing or bad 'model')"),
    _cli_case("edgeprof compare {folder} {folder}", "a folder, not a file"),
    _cli_case("edgeprof compare 1 2 --storage {folder}", "there are no saved runs under {folder}/"),
    _cli_case("edgeprof compare a b --csv --json", "argument --json: not allowed with argument --csv"),
    _cli_case("edgeprof compare store:x store:1 --store sqlite:///s.db", "bad stored run 'store:x': expected store:ID"),
    _cli_case("edgeprof compare store:7 store:7 --store sqlite:///s.db", "no run store:7 in store sqlite:///s.db"),
    _cli_case("edgeprof compare store:1 store:2", "no results store: give --store URL or set EDGEPROF_STORE"),
    _cli_case("edgeprof history --store postgresql://db:port/runs", "port 'port' is not a number from 1 to 65535"),
    _cli_case("edgeprof check --store sqlite:///{text}/s.db", "no folder {text} for its file"),
    _cli_case("edgeprof check --lookback 0 --store sqlite:///s.db", "argument --lookback: bad count '0'"),
    _cli_case("edgeprof store import {deep} --store sqlite:///s.db", "JSON nested too deeply"),
    _cli_case("edgeprof store import {plain_run} {inf_run} --store sqlite:///s.db", "not an edgeprof cell (missing or bad"),
    Case("EDGEPROF_STORE=redis://x edgeprof history", ("edgeprof", "history"), code=2, env=(("EDGEPROF_STORE", "redis://x"),),
         fragment="EDGEPROF_STORE: bad store URL 'redis://x': unknown scheme 'redis'"),
    _cli_case("edgeprof limits {deep}", "JSON nested too deeply"),
    _cli_case("edgeprof emulate-check {plain_run}", "no cell has both a measured and a predicted latency; run the suite "
              "with --emulate PROFILE"),
    _cli_case("edgeprof report {inf_run} --out {text}", "--out {text}: not a folder"),
    _cli_case("edgeprof report {inf_run} --out {text}/report", "{text} is a file, so nothing can be written below it"),
    _cli_case("edgeprof dashboard --out {folder}", "no results store: give --store URL or set EDGEPROF_STORE",
              env=(("EDGEPROF_STORE", ""),)),
    _cli_case("edgeprof dashboard {inf_run} --out {text}", "--out {text}: not a folder; give a folder for the dashboard's pages"),
    _cli_case("edgeprof dashboard {deep} --out {folder}", "{deep} is not a pytest-benchmark run: JSON nested too deeply"),
    _cli_case("edgeprof export {plain_run} --format csv", "argument --format: invalid choice: 'csv' (choose from 'bmf')"),
    _cli_case("edgeprof export {plain_run}", "the following arguments are required: --format"),
    _cli_case("edgeprof export {plain_run} --format bmf --out {folder}", "--out {folder}: is a folder; give a file path such as bmf.json"),
    _cli_case("edgeprof export {deep} --format bmf", "{deep} is not a pytest-benchmark run: JSON nested too deeply"),
    _cli_case("edgeprof layers resnet18 --runs ²", "argument --runs: bad count '²'"),
    _cli_case(f"{LAYERS} --plot layers.txt", "--plot layers.txt: cannot draw a .txt file; accepted suffixes:"),
    _cli_case(f"{LAYERS} --plot {{text}}/layers.png", "{text} is a file, so nothing can be written below it"),
    _cli_case("edgeprof layers vgg16 --shape 16", "vgg16 cannot take input shape 3x16x16"),
    _cli_case(f"{LAYERS} --weights {{empty_pth}}", "cannot read weights from {empty_pth} (empty or cut short)"),
    _cli_case(f"{LAYERS} --weights {{json_pth}}", "(not a weights-only torch file: Unsupported operand"),
    _cli_case(f"{LAYERS} --weights {{code_pth}}", "(not a weights-only torch file: Unsupported global", absent="{ran_code}"),
    _cli_case(f"{LAYERS} --weights {{list_pth}}", "holds a list, not a state dict"),
    _cli_case(f"{LAYERS} --weights {{linear_pth}}", "not a state dict of mobilenet_v3_small: 244 of its keys missing"),
    _cli_case(f"{LAYERS} --weights {{checkpoint_pth}}", "foreign keys (e.g. 'state_dict')"),
    _cli_case(f"{LAYERS} --batch 100000000", "ran out of memory on cpu", code=1),
    _cli_case("edgeprof layers shufflenet_v2_x0_5 --shape 32 --runs 1 --variant p50",
              "cannot prune shufflenet_v2_x0_5: torch-pruning cannot trace the model",
              code=1, env=(("XDG_CACHE_HOME", "{folder}"),)),
    Case(f"XDG_CACHE_HOME={{text}} {PRUNE}", ("edgeprof", *PRUNE.split()[1:]), code=2,
         fragment="the default variant cache {text}/pytest-edgeprof/variants: {text} is a file", env=(("XDG_CACHE_HOME", "{text}"),)),
    _cli_case("edgeprof capacity mobilenet_v3_small --memory 2.6", "argument --memory: bad size '2.6'"),
    _cli_case("edgeprof capacity vgg16 --shape 16 --memory 1GB --device cpu", "vgg16 cannot take input shape 3x16x16"),
    _cli_case(f"{CAPACITY} --weights {{json_pth}}", "(not a weights-only torch file"),
]

# Run by tools/bad_input_table.py for the table; tested in the modules named.
COVERED_ELSEWHERE = [
    _pytest_case("--device ssh://host --ssh-config (missing)", "--device", "ssh://host", "--ssh-config", "none",
                 fragment="ssh config 'none' is not a file", where="test_remote.py"),
    _pytest_case("--device tpu", "--device", "tpu", fragment="unknown --device 'tpu'; accepted:", where="test_plugin.py"),
    _pytest_case("--models resnt50", "--models", "resnt50", fragment="did you mean resnet50", where="test_plugin.py"),
    _pytest_case("--batch-sizes 0,8", "--batch-sizes", "0,8", fragment="bad batch size '0'", where="test_plugin.py"),
    _pytest_case("--shapes 224y160", "--shapes", "224y160", fragment="bad input shape '224y160'", where="test_plugin.py"),
    _pytest_case("--grid huge", "--grid", "huge", fragment="unknown --grid 'huge'", where="test_plugin.py"),
    _pytest_case("--emulate jetson-xavier-nx", "--emulate", "jetson-xavier-nx",
                 fragment="no published figures gathered for jetson-xavier-nx", where="test_plugin_emulate.py"),
    _pytest_case("--emulate jetson-nano --precision fp32,bf16", "--emulate", "jetson-nano", "--precision", "fp32,bf16",
                 fragment="--emulate jetson-nano: no peak FLOP/s for bf16 in its profile (it has fp32, fp16)",
                 where="test_plugin_emulate.py"),
    _pytest_case("--emulate host --precision fp32,int8", "--emulate", "host", "--precision", "fp32,int8",
                 fragment="--emulate host: no peak FLOP/s for int8 in its profile (it has fp32)", where="test_plugin_emulate.py"),
    _pytest_case("--latency-ci 1", "--latency-ci", "1", fragment="bad --latency-ci '1': expected a percentage",
                 where="test_timing.py"),
    _pytest_case("--cooldown until=50F", "--cooldown", "until=50F", fragment="bad --cooldown 'until=50F': expected seconds",
                 where="test_cooldown.py"),
    _pytest_case("--edgeprof-columns latency,speed", "--edgeprof-columns", "latency,speed",
                 fragment="unknown column 'speed'; accepted: latency, p99", where="test_summary.py"),
    _pytest_case("ini edgeprof_budget = latency=fast", ini="edgeprof_budget = latency=fast", fragment="bad duration 'fast'",
                 where="test_plugin_budgets.py"),
    _pytest_case("--budget memory=2.6", "--budget", "memory=2.6", fragment="bad size '2.6'", where="test_plugin_budgets.py"),
    _pytest_case("--budget speed=5ms", "--budget", "speed=5ms", fragment="unknown budget metric 'speed'",
                 where="test_plugin_budgets.py"),
    _pytest_case("@pytest.mark.budget('2GB')", suite=MARKED_SUITE.format(budget="'2GB'"),
                 fragment="budget marker takes keywords only", where="test_plugin_budgets.py"),
    _pytest_case("--edgeprof-compare-fail latency:10% (no --benchmark-compare)", "--edgeprof-compare-fail", "latency:10%",
                 fragment="needs --benchmark-compare", where="test_plugin_budgets.py"),
    _pytest_case("--prune 0.9", "--prune", "0.9", fragment="0.9 is out of range", where="test_plugin_variants.py"),
    _pytest_case("--prune-method taylor (no --prune-data)", "--prune-method", "taylor", fragment="needs --prune-data DIR",
                 where="test_plugin_variants.py"),
    _pytest_case("--eval-data {missing}", "--eval-data", "{missing}", fragment="no such folder", where="test_plugin_variants.py"),
    _pytest_case("--journal {folder}", "--journal", "{folder}", fragment="is a folder", where="test_journal.py"),
    _cli_case("edgeprof flops resnet5O", "unknown model 'resnet5O'", where="test_cli_flops.py"),
    _cli_case("edgeprof flops resnet18 --shape 3x224x224", "bad input shape '3x224x224'", where="test_cli_flops.py"),
    _cli_case("edgeprof frobnicate", "invalid choice: 'frobnicate'", where="test_cli_flops.py"),
    _cli_case("edgeprof predict resnet18 --target jetson-tx2", "unknown --target 'jetson-tx2'; accepted:",
              where="test_predict.py"),
    _cli_case("edgeprof predict resnet18 --target jetson-nano --precision int8 --runtime tensorrt",
              "jetson-nano has no int8 (its profile has fp32, fp16)", where="test_predict.py"),
    _cli_case("edgeprof predict resnet18 --target jetson-nano --power-mode 20W",
              "unknown --power-mode '20W' for jetson-nano; accepted: MAXN, 5W", where="test_predict.py"),
    _cli_case(f"{PRUNE.replace('0.5', '0.9')}", "0.9 is out of range", where="test_prune.py"),
    _cli_case("edgeprof compare a b --fail latency:10", "bad --fail item 'latency:10'", where="test_compare.py"),
    _cli_case("edgeprof compare a b --fail memory", "bad --fail item 'memory'", where="test_gates.py"),
    _cli_case("edgeprof compare a b --fail latency:", "bad --fail item 'latency:'", where="test_gates.py"),
    _cli_case("edgeprof compare {broken} {broken}", "not a pytest-benchmark run: not valid JSON", where="test_compare.py"),
    _cli_case("edgeprof limits {inf_run} --objective cost", "invalid choice: 'cost'", where="test_limits.py"),
    _cli_case("edgeprof report {missing}.json", "no such file", where="test_report.py"),
    _cli_case("edgeprof layers resnet18 --variant half", "variant 'half' is not 'base' or p<percent", where="test_layers.py"),
]


# --- the files a try reads -----------------------------------------------------------------------

# What each {name} of the tries is, for the table's legend.
FILES = {
    "text": "a plain text file", "folder": "an empty folder", "missing": "a path where nothing is",
    "deep": "a file of 100000 '[' (valid JSON start, nested past the decoder's recursion limit)",
    "broken": "'{\"benchmarks\": [' (JSON cut short)",
    "inf_run": "a pytest-benchmark-shaped run whose cell has batch_size Infinity",
    "half_run": "the same with batch_size 1.5", "null_model_run": "the same with model null",
    "plain_run": "a run of one fp32 mobilenet_v3_small cell", "fp16_run": "the same cell in fp16",
    "empty_pth": "an empty file", "json_pth": "a JSON text named .pth",
    "code_pth": "torch.save of an object whose unpickling would call open() (runs code if loaded unsafely)",
    "list_pth": "torch.save of a list of tensors", "linear_pth": "the state dict of nn.Linear(2, 2)",
    "checkpoint_pth": "torch.save({'state_dict': {}, 'epoch': 3}), a training checkpoint",
    "mobilenet_pth": "the state dict of mobilenet_v3_small (so not of squeezenet1_1)",
    "typed_journal": "a journal whose one line has latencies_s \"fast\"",
    "pipe": "a named pipe (reading it would wait for a writer)",
    "lock_is_folder": "a folder holding a folder j.jsonl.lock, where the lock of the journal j.jsonl goes",
    "superscript_index": "an ImageFolder whose class_index.json has the key '²'",
    "deep_index": "an ImageFolder whose class_index.json is 100000 '['",
    "far_index": "an ImageFolder whose class_index.json maps a folder to class 5000",
    "broken_images": "an ImageFolder holding broken.jpg, which is no image",
    "kept_json": "the --benchmark-json file of the run", "ran_code": "the file CODE_PTH would create",
}


class _RunsCode:
    """Unpickling this would create the file ``path``: what a hostile weights file would do."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def run_json(extra_info: dict[str, Any]) -> str:
    bench = {"fullname": "test_x.py::test_inference", "extra_info": extra_info, "stats": {}}
    return json.dumps({"machine_info": {}, "benchmarks": [bench]})


def _images(root: Path, classes: tuple[str, ...] = ("ant", "bee")) -> Path:
    for name in classes:
        (root / name).mkdir(parents=True)
        Image.new("RGB", (40, 40), (10, 200, 30)).save(root / name / "a.png")
    return root


def make_files(root: Path) -> dict[str, Path]:
    """Every file and folder the tries read, made for real under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    files = {name: root / name for name in ("folder", "missing", "kept_json", "ran_code")}
    files["folder"].mkdir()
    files["text"] = root / "notes.txt"
    files["text"].write_text("notes\n")
    files["deep"] = root / "deep.json"
    files["deep"].write_text("[" * 100_000)
    files["broken"] = root / "broken.json"
    files["broken"].write_text('{"benchmarks": [')
    cell = {"model": "mobilenet_v3_small", "variant": "base", "batch_size": 1, "input_shape": [3, 16, 16]}
    for name, change in (("inf_run", {"batch_size": math.inf}), ("half_run", {"batch_size": 1.5}),
                         ("null_model_run", {"model": None})):
        files[name] = root / f"{name}.json"
        files[name].write_text(run_json({**cell, **change}))
    files["plain_run"] = root / "plain_run.json"
    files["plain_run"].write_text(run_json({**cell, "latency_ms_median": 1.0}))
    files["fp16_run"] = root / "fp16_run.json"
    files["fp16_run"].write_text(run_json({**cell, "precision": "fp16", "latency_ms_median": 1.0}))
    files["typed_journal"] = root / "typed.jsonl"
    files["typed_journal"].write_text(json.dumps(
        {"format": FORMAT, "key": "cpu|random|mobilenet_v3_small-base-b1-16x16", "outcome": "passed",
         "extra_info": cell, "latencies_s": "fast", "iterations": 1, "message": ""}, separators=(",", ":")) + "\n")
    files["pipe"] = root / "pipe"
    os.mkfifo(files["pipe"])
    files["lock_is_folder"] = root / "lock_is_folder"
    (files["lock_is_folder"] / "j.jsonl.lock").mkdir(parents=True)
    files["empty_pth"] = root / "empty.pth"
    files["empty_pth"].write_bytes(b"")
    files["json_pth"] = root / "json.pth"
    files["json_pth"].write_text('{"conv.weight": [1, 2]}')
    files["code_pth"] = root / "code.pth"
    torch.save({"conv.weight": _RunsCode(files["ran_code"])}, files["code_pth"])
    files["list_pth"] = root / "list.pth"
    torch.save([torch.zeros(2)], files["list_pth"])
    files["linear_pth"] = root / "linear.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), files["linear_pth"])
    files["checkpoint_pth"] = root / "checkpoint.pth"
    torch.save({"state_dict": {}, "epoch": 3}, files["checkpoint_pth"])
    files["mobilenet_pth"] = root / "mobilenet_v3_small.pth"
    torch.manual_seed(0)
    import torchvision

    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), files["mobilenet_pth"])
    files["broken_images"] = _images(root / "broken_images")
    (files["broken_images"] / "bee" / "broken.jpg").write_bytes(b"not an image")
    files["far_index"] = _images(root / "far_index")
    (files["far_index"] / "class_index.json").write_text(json.dumps({"0": "ant", "5000": "bee"}))
    files["superscript_index"] = _images(root / "superscript_index")
    (files["superscript_index"] / "class_index.json").write_text(json.dumps({"0": "ant", "²": "ant"}))
    files["deep_index"] = _images(root / "deep_index")
    (files["deep_index"] / "class_index.json").write_text("[" * 100_000)
    return files


# --- running a try -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    def lines(self, case: Case) -> list[str]:
        """The message lines: pytest's ``ERROR:`` and ``Exit:`` lines, edgeprof's ``edgeprof:`` lines."""
        if not case.pytest:
            return [line for line in re.split(r"[\r\n]", self.err) if line.startswith("edgeprof:")]
        errors = [line.removeprefix("ERROR: ") for line in self.err.splitlines() if line.startswith("ERROR: ")]
        stops = [re.sub(r"^!+ _pytest\.outcomes\.Exit: (.*?) !+$", r"\1", line)
                 for line in self.out.splitlines() if "_pytest.outcomes.Exit:" in line]
        return errors + stops

    def message(self, case: Case) -> str:
        """The one line for the table: the message line, else the first line holding the fragment."""
        lines = self.lines(case)
        if lines:
            return lines[0]
        return next((line.strip() for line in (self.out + "\n" + self.err).splitlines() if case.fragment in line), "")


def run_cli(case: Case) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(case.argv[1:]))
    return Outcome(code, out.getvalue(), err.getvalue())


def check(case: Case, outcome: Outcome, files: dict[str, Path]) -> None:
    """What every try must give: its exit code, one line naming the fragment, no traceback, nothing lost or run."""
    everything = outcome.out + outcome.err
    assert "Traceback" not in everything and "INTERNALERROR" not in everything, everything[-3000:]
    assert outcome.code == case.code, everything[-3000:]
    if case.code:
        lines = outcome.lines(case)
        assert len(lines) == 1, lines
        assert case.fragment in lines[0], lines[0]
    else:
        assert case.fragment in everything
    if case.absent:
        assert not Path(case.absent).exists()
    if case.keeps:
        journal = [json.loads(line) for line in (Path(".benchmarks") / "edgeprof-journal.jsonl").read_text().splitlines()]
        assert [entry["key"].split("|")[0] for entry in journal] == [case.keeps]
        saved = json.loads(files["kept_json"].read_text())["benchmarks"]
        assert [bench["param"] for bench in saved] == [case.keeps]

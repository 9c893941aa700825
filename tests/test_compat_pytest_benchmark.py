"""What compat/pytest_benchmark.py relies on, pinned on the installed pytest-benchmark: a release that
changes one of these fails here, not as a wrong number in a saved run."""

from __future__ import annotations

import json

import pytest
import pytest_benchmark

from pytest_edgeprof.compat.pytest_benchmark import machine_id, storage_folder


def test_the_installed_version_is_one_edgeprof_supports():
    major = int(pytest_benchmark.__version__.split(".")[0])
    assert 4 <= major <= 5, f"pytest-benchmark {pytest_benchmark.__version__}: compat/pytest_benchmark.py checked on 4.x-5.x"


RECORDED = """
from pytest_edgeprof.compat import pytest_benchmark as compat


def test_recorded(benchmark):
    compat.record_rounds(benchmark, [0.001, 0.003, 0.002], 1)
    assert compat.timed_rounds(benchmark) == ([0.001, 0.003, 0.002], 1)
"""


def test_rounds_measured_elsewhere_are_saved_as_the_fixtures_own(pytester):
    pytester.makepyfile(RECORDED)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:edgeprof", "--benchmark-json=out.json", "-W", "error")
    result.assert_outcomes(passed=1)  # and no "fixture was not used" warning
    [saved] = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert saved["stats"]["rounds"] == 3 and saved["stats"]["median"] == pytest.approx(0.002)
    assert saved["stats"]["data"] == [0.001, 0.003, 0.002]


OPTIONS = """
from pytest_edgeprof.compat import pytest_benchmark as compat


def test_options(request):
    options = compat.options(request.config)
    assert (options.max_time_s, options.min_rounds) == (0.5, 7)
    assert options.timer == "time.process_time" and options.enabled is False
    assert options.storage_uri == "file://elsewhere"
"""


UNSET = """
from pytest_edgeprof.compat import pytest_benchmark as compat


def test_unset(request):
    assert compat.options(request.config).max_time_s is None  # not given: edgeprof's own default applies
"""


def test_a_max_time_not_given_is_told_from_one_given(pytester):
    pytester.makepyfile(UNSET)
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:edgeprof").assert_outcomes(passed=1)


def test_options_are_read_by_their_names(pytester):
    pytester.makepyfile(OPTIONS)
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:edgeprof", "--benchmark-max-time", "0.5", "--benchmark-min-rounds", "7",
                       "--benchmark-timer", "time.process_time", "--benchmark-disable",
                       "--benchmark-storage", "file://elsewhere").assert_outcomes(passed=1)


def test_autosave_writes_under_the_machine_id_in_the_storage_folder(pytester):
    pytester.makepyfile(RECORDED)
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:edgeprof", "--benchmark-autosave",
                       "--benchmark-storage", "file://./saved").assert_outcomes(passed=1)
    assert storage_folder("file://./saved") == pytester.path.joinpath("saved").relative_to(pytester.path)
    assert [p.name for p in (pytester.path / "saved").iterdir()] == [machine_id()]


TINY_CELL = """
from torch import nn

def test_tiny(edgeprof):
    edgeprof(nn.Conv2d(3, 4, 3), batch_size=1, input_shape=(3, 8, 8), name="tiny")
"""


@pytest.mark.parametrize("given", [[], ["--benchmark-max-time", "0.05"]], ids=["default ceiling", "given"])
def test_the_saved_max_time_is_the_ceiling_the_rounds_ran_under(pytester, given):
    from pytest_edgeprof.plugin.session import DEFAULT_CEILING_S

    pytester.makepyfile(TINY_CELL)
    result = pytester.runpytest("-p", "no:cacheprovider", "--device", "cpu", "--no-energy", "--latency-ci", "50%",
                                "--benchmark-json=out.json", *given)
    result.assert_outcomes(passed=1)
    [saved] = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert saved["options"]["max_time"] == (float(given[1]) if given else DEFAULT_CEILING_S)


NOTHING_TIMED = """
import pytest


def test_failed(benchmark):
    pytest.fail("no rounds")
"""
SAVE_WITHOUT_TIMINGS = """
import pytest
from pytest_edgeprof.compat import pytest_benchmark as compat


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session):
    try:
        return (yield)
    finally:
        compat.save_without_timings(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["said"] = "saved"
"""


@pytest.mark.parametrize("stand_in", [False, True], ids=["as it is", "with the stand-in"])
def test_a_run_that_timed_nothing_is_saved_only_with_the_stand_in(pytester, stand_in):
    pytester.makepyfile(NOTHING_TIMED)
    if stand_in:
        pytester.makeconftest(SAVE_WITHOUT_TIMINGS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:edgeprof", "--benchmark-json=out.json")
    result.assert_outcomes(failed=1)
    saved = pytester.path / "out.json"
    assert saved.exists() is stand_in
    if stand_in:
        assert json.loads(saved.read_text())["benchmarks"] == [] and json.loads(saved.read_text())["said"] == "saved"

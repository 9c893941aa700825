"""Budget parsing, evaluation and messages; hypothesis properties for the unit parsers and formatters."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.budgets import Budget, evaluate, merge_budgets, parse_budget, parse_budget_spec
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Measurement
from pytest_edgeprof.metrics import (
    MAP,
    METRICS,
    format_bytes,
    format_duration_ms,
    format_energy_j,
    parse_bytes,
    parse_duration_ms,
    parse_energy_j,
    parse_fraction,
    parse_percent,
    parse_rate_ips,
)

# --- units, by example ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2.6GB", 2_600_000_000),
        ("2.6GiB", round(2.6 * 2**30)),
        ("300MB", 300_000_000),
        ("512MiB", 512 * 2**20),
        ("100kB", 100_000),
        ("123B", 123),
        (" 4 GB ", 4_000_000_000),
        (".5TB", 500_000_000_000),
    ],
)
def test_parse_bytes_decimal_and_binary_units(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    "text", ["2.6", "2600000000", "lots", "2.6gb", "2.6 G", "-1GB", "0GB", "1e9B", "GB", "0.4B", ""]
)
def test_parse_bytes_rejects_with_the_bad_text_and_the_accepted_form(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_bytes(text)
    message = str(caught.value)
    assert repr(text) in message and "2.6GB" in message and "GiB" in message
    assert "\n" not in message


def test_other_units() -> None:
    assert parse_duration_ms("50ms") == 50.0
    assert parse_duration_ms("0.5s") == 500.0
    assert parse_duration_ms("200us") == pytest.approx(0.2)
    assert parse_energy_j("0.5J") == 0.5
    assert parse_energy_j("500mJ") == pytest.approx(0.5)
    assert parse_rate_ips("20ips") == 20.0
    assert parse_percent("70") == parse_percent("70%") == 70.0
    for parse, bad in [(parse_duration_ms, "50"), (parse_duration_ms, "-3ms"), (parse_energy_j, "0.5W"),
                       (parse_rate_ips, "20fps"), (parse_percent, "101"), (parse_percent, "0%")]:
        with pytest.raises(UsageError, match=re.escape(repr(bad))):
            parse(bad)


# --- units, by property ---------------------------------------------------------------------------

_decimals = st.decimals(min_value="0.001", max_value="100000", places=3, allow_nan=False, allow_infinity=False)


@given(_decimals, st.sampled_from(["B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"]))
def test_bytes_text_parses_to_number_times_unit(number, unit: str) -> None:
    factor = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]
    exact = number * factor
    if exact < 1:
        with pytest.raises(UsageError):
            parse_bytes(f"{number}{unit}")
    else:
        assert parse_bytes(f"{number}{unit}") == pytest.approx(float(exact), abs=0.5, rel=1e-12)


@given(st.integers(min_value=1, max_value=10**30), st.sampled_from(["B", "TB", "TiB"]))
def test_a_size_beyond_any_memory_is_one_line_not_an_overflow_later(number: int, unit: str) -> None:
    try:
        parsed = parse_bytes(f"{number}{unit}")
    except UsageError as error:
        assert "up to 4 EiB" in str(error) and "\n" not in str(error)
    else:
        assert parsed <= 2**62  # an address-space limit of the isolated child, and budgets, stay within a C long


@given(st.integers(min_value=1, max_value=10**16), st.sampled_from([None, "2.6GB", "2.6GiB"]))
def test_format_bytes_round_trips_to_three_significant_digits(n: int, like: str | None) -> None:
    text = format_bytes(n, like=like)
    assert parse_bytes(text) == pytest.approx(n, rel=5e-3, abs=0.5)
    assert ("iB" in text) == (like == "2.6GiB" and n >= 1024)  # the budget's unit family


@given(st.floats(min_value=1e-3, max_value=1e7), st.sampled_from([None, "50ms", "0.5s", "200us"]))
def test_format_duration_round_trips(ms: float, like: str | None) -> None:
    assert parse_duration_ms(format_duration_ms(ms, like=like)) == pytest.approx(ms, rel=5e-3)


@given(st.floats(min_value=1e-3, max_value=1e6), st.sampled_from([None, "0.5J", "500mJ"]))
def test_format_energy_round_trips(joules: float, like: str | None) -> None:
    assert parse_energy_j(format_energy_j(joules, like=like)) == pytest.approx(joules, rel=5e-3)


_quantity_like = st.from_regex(r"\s?-?[0-9.]{0,4}\s?[A-Za-zµ%]{0,4}\s?", fullmatch=True)


@given(_quantity_like | st.text(max_size=20))
def test_any_text_parses_or_is_a_one_line_usage_error_naming_it(text: str) -> None:
    for parse in (parse_bytes, parse_duration_ms, parse_energy_j, parse_rate_ips):
        try:
            value = parse(text)
        except UsageError as exc:
            assert repr(text) in str(exc) and "\n" not in str(exc)
        else:
            assert value > 0 and math.isfinite(value)
            assert re.fullmatch(r"\s*[0-9.]+\s*[A-Za-zµ]+\s*", text)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_bare_numbers_are_rejected_for_units(number: float) -> None:
    for parse in (parse_bytes, parse_duration_ms, parse_energy_j, parse_rate_ips):
        with pytest.raises(UsageError):
            parse(str(number))
    with pytest.raises(UsageError, match="needs its unit"):
        parse_budget("memory", number)


@given(st.floats(min_value=1e-3, max_value=1e4))
def test_negative_values_are_rejected(number: float) -> None:
    with pytest.raises(UsageError, match=re.escape(f"'-{number}ms'")):
        parse_duration_ms(f"-{number}ms")


# --- budgets --------------------------------------------------------------------------------------


def test_metrics_read_design_keys_with_their_bounds() -> None:
    table = {name: (spec.key, spec.bound) for name, spec in METRICS.items()}
    assert table == {
        "memory": ("peak_mem_bytes", "upper"),
        "latency": ("latency_ms_median", "upper"),
        "p99": ("latency_ms_p99", "upper"),
        "energy": ("energy_j_per_image", "upper"),
        "throughput": ("throughput_ips", "lower"),
        "flops": ("flops", "upper"),
        "flops_per_s": ("flops_per_s", "lower"),
        "efficiency": ("efficiency", "lower"),
        "top1": ("top1", "lower"),
        "top5": ("top5", "lower"),
        "target_memory": ("target_peak_mem_bytes", "upper"),
        "target_latency": ("target_latency_ms", "upper"),
        "target_energy": ("target_energy_j_per_image", "upper"),
        "target_throughput": ("target_throughput_ips", "lower"),
        "map": ("map", "lower"),
        "miou": ("miou", "lower"),
    }


@given(st.floats(min_value=1e-4, max_value=1.0))
def test_scores_parse_between_0_and_1(score: float) -> None:
    text = f"{score:.4f}"
    assert parse_fraction(text) == float(text)
    assert MAP.format(float(text)) == f"{float(text):.3f}"


@pytest.mark.parametrize("text", ["0", "1.5", "30%", "-0.3", "high", ""])
def test_bad_scores_are_one_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match=f"bad score {re.escape(repr(text))}: expected a number above 0 and at most 1"):
        parse_fraction(text)


def test_a_tasks_own_accuracy_is_budgeted() -> None:
    budgets = parse_budget_spec("map=0.3,miou=0.5")
    assert budgets["map"] == Budget("map", 0.3, "0.3") and budgets["miou"] == Budget("miou", 0.5, "0.5")


def test_budget_spec_of_the_command_line() -> None:
    budgets = parse_budget_spec("memory=2.6GB, latency=50ms,p99=80ms,energy=0.5J,throughput=20ips,top1=70")
    assert budgets["memory"] == Budget("memory", 2.6e9, "2.6GB")
    assert budgets["latency"].limit == 50.0 and budgets["p99"].limit == 80.0
    assert budgets["energy"].limit == 0.5 and budgets["throughput"].limit == 20.0
    assert budgets["top1"].limit == 70.0
    assert parse_budget_spec("") == {}


def test_marker_values_may_be_numbers_only_for_percentages() -> None:
    assert parse_budget("top5", 90).limit == 90.0
    expected = "bad memory budget 2600000000.0: a number needs its unit, e.g. memory=2.6GB"
    with pytest.raises(UsageError, match=re.escape(expected)):
        parse_budget("memory", 2.6e9)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("memory=lots", "memory budget: bad size 'lots': expected a positive number and its unit, e.g. 2.6GB"),
        ("latency=-3ms", "latency budget: bad duration '-3ms': expected a positive number and its unit, e.g. 50ms"),
        ("mem=2GB", "unknown budget metric 'mem'; accepted: memory, latency, p99, energy, throughput, top1, top5"),
        ("memory", "bad budget 'memory' in 'memory': expected METRIC=VALUE[,METRIC=VALUE...], e.g. memory=2.6GB"),
        ("memory=1GB,memory=2GB", "budget 'memory' given twice in 'memory=1GB,memory=2GB'"),
    ],
)
def test_malformed_budget_specs_are_one_line_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_budget_spec(spec)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_later_layers_override_earlier_ones() -> None:
    device = {"memory": Budget("memory", 4 * 2**30, "4GiB")}
    ini = parse_budget_spec("memory=3GB,latency=100ms")
    command_line = parse_budget_spec("latency=50ms")
    marker = {"memory": parse_budget("memory", "2.6GB")}
    merged = merge_budgets(device, ini, command_line, marker)
    assert merged == {"memory": marker["memory"], "latency": command_line["latency"]}
    assert merge_budgets(device, {}) == device


# --- verdicts -------------------------------------------------------------------------------------

CELL, DEVICE = "vgg16-base-b64-224x224", "jetson-nano"


def _measured(**extra_info: object) -> Measurement:
    """A batch-1 cell's record with these saved keys (throughput follows from the median latency)."""
    return Measurement.from_extra_info({"model": "vgg16", "variant": "base", "batch_size": 1,
                                        "input_shape": [3, 224, 224], **extra_info})


def _one(spec: str, **extra_info: object):
    (verdict,) = evaluate(parse_budget_spec(spec), _measured(**extra_info))
    return verdict


def test_over_memory_budget_line_is_the_issue_example() -> None:
    verdict = _one("memory=2.6GB", peak_mem_bytes=2_810_000_000)
    assert not verdict.passed and verdict.status == "over"
    assert verdict.line(CELL, DEVICE) == "peak memory 2.81 GB > budget 2.6 GB (vgg16-base-b64-224x224 on jetson-nano)"


def test_measured_value_is_shown_in_the_budget_unit_family() -> None:
    verdict = _one("memory=2.6GiB", peak_mem_bytes=2_810_000_000)
    assert verdict.line(CELL, DEVICE).startswith("peak memory 2.62 GiB > budget 2.6 GiB")


def test_close_values_get_digits_enough_to_differ() -> None:
    verdict = _one("memory=2.6GB", peak_mem_bytes=2_600_100_000)
    assert verdict.line(CELL, DEVICE).startswith("peak memory 2.6001 GB > budget 2.6 GB")


def test_a_value_equal_to_the_budget_passes() -> None:
    assert _one("latency=50ms", latency_ms_median=50.0).passed
    assert _one("throughput=20ips", latency_ms_median=50.0).passed


def test_lower_bounds_fail_below() -> None:
    verdict = _one("throughput=20ips", latency_ms_median=1000 / 12.34)
    assert not verdict.passed
    assert verdict.line(CELL, DEVICE).startswith("throughput 12.3 ips < budget 20 ips")
    assert _one("top1=70%", top1=71.2).line(CELL, DEVICE).startswith("top-1 accuracy 71.2 % >= budget 70 %")


def test_latency_is_shown_in_the_unit_the_budget_was_written_in() -> None:
    verdict = _one("p99=0.08s", latency_ms_median=60.0, latency_ms_p99=95.0)
    assert verdict.line(CELL, DEVICE).startswith("p99 latency 0.095 s > budget 0.08 s")


@pytest.mark.parametrize("missing", [{}, {"energy_j_per_image": None}, {"energy_source": "none"}])
def test_a_budgeted_metric_that_was_not_measured_does_not_pass(missing: dict) -> None:
    verdict = _one("energy=0.5J", **missing)
    assert verdict.measured is None and not verdict.passed and verdict.status == "not measured"
    assert verdict.line(CELL, DEVICE) == (
        "energy per image not measured, budget 0.5 J (vgg16-base-b64-224x224 on jetson-nano)"
    )


def test_evaluate_checks_every_budget_in_metric_order() -> None:
    budgets = parse_budget_spec("throughput=20ips,memory=1MB,latency=50ms")
    info = {"peak_mem_bytes": 3_000_000, "latency_ms_median": 12.0, "energy_j_per_image": 9.0}
    verdicts = evaluate(budgets, _measured(**info))
    checked = [(v.budget.metric, v.passed) for v in verdicts]
    assert checked == [("memory", False), ("latency", True), ("throughput", True)]
    assert verdicts[0].as_dict() == {
        "metric": "memory", "budget": "1MB", "limit": 1e6, "measured": 3e6, "status": "over", "passed": False,
    }

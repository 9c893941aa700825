import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgeprof.cli import main
from pytest_edgeprof.outcome import Outcome
from pytest_edgeprof.runs.capacity import MAX_BATCH, Probe, search


def curve_probe(fixed: int, per_image: int, budget: int, bend: float = 0.0, oom_above: int | None = None):
    """A synthetic memory curve standing in for the device, to test the search logic alone:
    fixed + per_image * b, bent by ``bend`` (allocator rounding, algorithms that change with the batch)."""

    def probe(batch: int) -> Probe:
        if oom_above is not None and batch > oom_above:
            return Probe(batch, False, None, Outcome.OUT_OF_MEMORY)
        peak = int(fixed + per_image * batch * (1 + bend * math.sin(batch)))
        return Probe(batch, peak <= budget, peak, Outcome.PASSED if peak <= budget else Outcome.OVER_BUDGET)

    return probe


def true_answer(probe, limit=1 << 17) -> int:
    largest = 0
    for batch in range(1, limit):
        if not probe(batch).fits:
            return largest
        largest = batch
    return largest


@settings(max_examples=200, deadline=None)
@given(st.integers(10**6, 10**9), st.integers(10**4, 10**8), st.integers(10**6, 3 * 10**10))
def test_linear_memory_answer_within_the_probe_bound(fixed, per_image, budget):
    probe = curve_probe(fixed, per_image, budget)
    expected = min(max((budget - fixed) // per_image, 0), MAX_BATCH)
    largest, probes = search(probe, budget)
    assert largest == expected
    if expected:
        assert len(probes) <= math.ceil(math.log2(expected)) + 2


@settings(max_examples=100, deadline=None)
@given(st.integers(10**6, 10**8), st.integers(10**5, 10**7), st.integers(10**7, 10**9), st.floats(0, 0.05))
def test_bent_memory_still_gives_the_exact_answer(fixed, per_image, budget, bend):
    probe = curve_probe(fixed, per_image, budget, bend)
    largest, probes = search(probe, budget)
    expected = true_answer(probe)
    # a bent curve may have several crossings; the answer is a fitting batch whose next batch does not fit
    assert probe(largest).fits if largest else not probe(1).fits
    assert not probe(largest + 1).fits
    assert largest == expected or len(probes) <= 2 * math.ceil(math.log2(max(expected, 2))) + 4


def test_out_of_memory_probes_bracket_the_answer():
    probe = curve_probe(10**7, 10**6, 10**12, oom_above=37)
    largest, probes = search(probe, 10**12)
    assert largest == 37
    assert any(p.outcome is Outcome.OUT_OF_MEMORY for p in probes)


def test_batch_one_over_budget_answers_none():
    largest, probes = search(curve_probe(10**9, 10**6, 10**8), 10**8)
    assert largest == 0 and len(probes) == 1


def test_capacity_of_resnet18_on_this_cpu_measured_by_isolated_probes(capsys):
    """The issue's bar: `edgeprof capacity resnet18 --shape 112 --memory 300MB --device cpu`."""
    assert main(["capacity", "resnet18", "--shape", "112", "--memory", "300MB", "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    largest, probes = report["largest"], report["probes"]
    assert largest > 1
    by_batch = {p["batch"]: p for p in probes}
    assert by_batch[largest]["fits"] and by_batch[largest]["peak_mem_bytes"] <= 300_000_000
    assert not by_batch[largest + 1]["fits"]
    assert len(probes) <= math.ceil(math.log2(largest)) + 2

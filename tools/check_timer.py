"""Checks the suite's timer against torch.utils.benchmark and measures the harness's overhead.

    python tools/check_timer.py            # both checks
    python tools/check_timer.py truth      # resnet18 b1 224x224: suite median vs blocked_autorange, bar 5 %
    python tools/check_timer.py overhead   # a ~5 ms model: what the harness adds per call, bar 1 %
    python tools/check_timer.py precision  # resnet18 b1 224x224: suite median vs adaptive_autorange,
                                                # alternated 5 times (bar 2 %), and how often the next run's
                                                # median (and a reference median) falls inside each saved 95 %
                                                # interval over 20 runs (21 runs, after 2 that give them a
                                                # history): latency_ms_ci95 (within the run) and
                                                # latency_ms_repeat95 (bar: 90 %);
                                                # --save FILE keeps each run's rounds and reference median;
                                                # --coverage-runs 0 for the ratio alone;
                                                # --threads 1 for one torch thread
    python tools/check_timer.py rule       # the same ratio for the stopping rule alone, without pytest

Each runs the real suite (benchmarks/test_inference.py) in this process through pytest.main, reads
the median it saved, then measures the same model and input in the same process. Run it on a quiet
machine: other processes competing for the cores move both numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import torch.utils.benchmark as torch_benchmark

from pytest_edgeprof.measure.timing import CallRecorder, StoppingRule, warm_up
from pytest_edgeprof.models.zoo import build_model, example_input

SUITE = str(Path(__file__).resolve().parents[1] / "benchmarks" / "test_inference.py")


def suite_median_ms(model: str, shape: int, max_time: float) -> float:
    return suite_cell(model, shape, max_time)["latency_ms_median"]


def suite_cell(model: str, shape: int, max_time: float, cache: Path | None = None) -> dict:
    """The saved extra_info of one cell of the real suite, run in this process."""
    return suite_cell_and_rounds(model, shape, max_time, cache)[0]


def suite_cell_and_rounds(model: str, shape: int, max_time: float, cache: Path | None = None) -> tuple[dict, list[float]]:
    """The saved extra_info and the timed rounds (seconds, in order) of one cell of the real suite, run in this process.
    ``cache``: pytest's cache folder, shared by the runs of one check as a machine's runs share it (the earlier
    reruns' spread); None: no cache."""
    cached = ["-o", f"cache_dir={cache}"] if cache else ["-p", "no:cacheprovider"]
    with tempfile.TemporaryDirectory() as tmp:
        out, journal = Path(tmp) / "run.json", Path(tmp) / "journal.jsonl"
        args = [SUITE, "-q", *cached, "--device", "cpu", "--models", model, "--batch-sizes", "1",
                "--shapes", str(shape), f"--benchmark-max-time={max_time}", f"--benchmark-json={out}",
                f"--journal={journal}"]
        if pytest.main(args) != 0:
            sys.exit("the suite failed")
        rounds = json.loads(journal.read_text().splitlines()[-1])["latencies_s"]
        return json.loads(out.read_text())["benchmarks"][0]["extra_info"], rounds


def check_truth() -> bool:
    suite = suite_median_ms("resnet18", 224, max_time=3.0)
    model, x = build_model("resnet18"), example_input(1, (3, 224, 224))
    timer = torch_benchmark.Timer(
        "with torch.inference_mode(): model(x)", globals={"model": model, "x": x, "torch": torch},
        num_threads=torch.get_num_threads(),
    )
    reference = timer.blocked_autorange(min_run_time=3.0).median * 1e3
    diff = (suite - reference) / reference
    print(f"timer truth: resnet18 b1 224x224 cpu, {torch.get_num_threads()} threads: suite median {suite:.2f} ms, "
          f"blocked_autorange median {reference:.2f} ms, difference {diff:+.1%} (bar: within 5 %)")
    return abs(diff) <= 0.05


def bare_median_ms(model: torch.nn.Module, x: torch.Tensor, seconds: float) -> float:
    times = []
    with torch.inference_mode():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            began = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e3


def per_call_harness_cost_s(calls: int = 200_000) -> float:
    """What the harness wraps around each call (CallRecorder, pytest-benchmark's loop), timed on a no-op."""
    from pytest_edgeprof.measure.timing import CallRecorder

    def noop() -> None:
        return None

    recorder = CallRecorder(noop, "cpu")
    began = time.perf_counter()
    for _ in range(calls):
        noop()
    bare = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(calls):
        recorder()
    wrapped = time.perf_counter() - began
    return (wrapped - bare) / calls


def check_overhead(model_name: str = "resnet18", shape: int = 64, repeats: int = 5) -> bool:
    """Direct: the harness's per-call cost against the model's median. Whole: suite runs interleaved
    with bare loops (so drift in the machine's speed hits both alike), medians compared."""
    model, x = build_model(model_name), example_input(1, (3, shape, shape))
    bare_median_ms(model, x, 2.0)  # warm the bare path as the suite warms its own
    suite, bare = [], []
    for _ in range(repeats):
        suite.append(suite_median_ms(model_name, shape, max_time=2.0))
        bare.append(bare_median_ms(model, x, 2.0))
    model_ms = statistics.median(bare)
    direct = per_call_harness_cost_s() * 1e3 / model_ms
    whole = (statistics.median(suite) - model_ms) / model_ms
    print(f"overhead: {model_name} b1 {shape}x{shape} cpu, median {model_ms:.3f} ms per call. "
          f"Direct: the harness costs {per_call_harness_cost_s() * 1e6:.2f} us per call = {direct:+.3%} (bar: at most 1 %). "
          f"Whole: suite medians {', '.join(f'{s:.3f}' for s in suite)} ms vs bare loop medians "
          f"{', '.join(f'{b:.3f}' for b in bare)} ms: {whole:+.2%} (run-to-run noise of the medians: "
          f"{(max(bare) - min(bare)) / model_ms:.1%})")
    return direct <= 0.01


def reference_median_ms(model: torch.nn.Module, x: torch.Tensor) -> float:
    """adaptive_autorange's median, warmed up as the suite warms its own model. With its default
    ``min_run_time`` (0.01 s) it stops after as few as 4 calls once their spread is small, a median that
    moved by 2-5 % from one call of it to the next here (and the first calls after other work are the
    slow ones); 3 s gives it at least ~100 calls of resnet18 b1 224x224."""
    with torch.inference_mode():
        warm_up(lambda: model(x), "cpu")
    timer = torch_benchmark.Timer("with torch.inference_mode(): model(x)", globals={"model": model, "x": x, "torch": torch},
                                  num_threads=torch.get_num_threads())
    return timer.adaptive_autorange(threshold=0.01, min_run_time=3.0, max_run_time=10.0).median * 1e3


def check_precision(alternations: int = 5, coverage_runs: int = 20, save: Path | None = None, shape: int = 224,
                    history_runs: int = 2) -> bool:
    """The stopping rule's median against torch.utils.benchmark's adaptive_autorange, alternated in one
    process (each first in turn) so drift hits both; then each saved interval's coverage of a fresh reference median. ``save``:
    a JSON file for each coverage run's rounds, saved keys and reference median (to study other rules). ``shape``:
    the input's side (224; smaller for a reduced run on a busy machine). ``history_runs``: runs before the coverage
    runs, so the first of them has earlier reruns as a machine running the suite has (their cache is the check's own)."""
    model, x = build_model("resnet18"), example_input(1, (3, shape, shape))
    ratios = []
    for turn in range(alternations):  # each goes first in turn, so a drift over a pair does not favour one
        if turn % 2:
            reference = reference_median_ms(model, x)
            suite = suite_cell("resnet18", shape, max_time=5.0)["latency_ms_median"]
        else:
            suite = suite_cell("resnet18", shape, max_time=5.0)["latency_ms_median"]
            reference = reference_median_ms(model, x)
        ratios.append(suite / reference)
    ratio = statistics.median(ratios) if ratios else 1.0
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(history_runs if coverage_runs else 0):
            suite_cell("resnet18", shape, max_time=5.0, cache=Path(cache))
        runs = coverage_runs_of(model, x, shape, coverage_runs, save, Path(cache)) if coverage_runs else []
    coverage = coverage_text(runs)
    print(f"precision: resnet18 b1 {shape}x{shape} cpu, {torch.get_num_threads()} threads, {history_runs} runs of history "
          f"first. Suite median / adaptive_autorange "
          f"median, {alternations} alternations: {', '.join(f'{r:.3f}' for r in ratios)}; median {ratio:.3f} "
          f"(bar: within 2 %).{coverage}")
    next_hits = sum(_inside(run["extra_info"], "latency_ms_repeat95", after["extra_info"]["latency_ms_median"])
                    for run, after in zip(runs, runs[1:]))
    return abs(ratio - 1) <= 0.02 and (not runs or next_hits >= 0.9 * (len(runs) - 1))


def coverage_runs_of(model: torch.nn.Module, x: torch.Tensor, shape: int, count: int, save: Path | None,
                     cache: Path) -> list[dict]:
    """``count`` + 1 suite runs, each followed by a reference median: run i's interval is checked against run i+1's
    median (the next run, as a user's next run reads) and against the reference taken right after it."""
    runs: list[dict] = []
    for _ in range(count + 1):
        cell, rounds = suite_cell_and_rounds("resnet18", shape, max_time=5.0, cache=cache)
        runs.append({"extra_info": cell, "rounds_s": rounds, "reference_ms": reference_median_ms(model, x)})
        if save:
            save.write_text(json.dumps(runs))
    return runs


def _inside(cell: dict, key: str, value: float) -> bool:
    """Whether ``value`` lies inside the cell's saved interval ``key``; a cell without one (too few rounds) misses."""
    return key in cell and cell[key][0] <= value <= cell[key][1]


def coverage_text(runs: list[dict]) -> str:
    """The coverage of each saved interval, of the next run's median and of the reference median, as one paragraph."""
    if len(runs) < 2:
        return ""
    pairs = list(zip(runs, runs[1:]))
    parts = []
    for key in ("latency_ms_ci95", "latency_ms_repeat95"):
        cells = [run["extra_info"] for run, _ in pairs]
        widths = [(c[key][1] - c[key][0]) / 2 / c["latency_ms_median"] for c in cells if key in c]
        following = sum(_inside(run["extra_info"], key, after["extra_info"]["latency_ms_median"]) for run, after in pairs)
        reference = sum(_inside(run["extra_info"], key, run["reference_ms"]) for run, _ in pairs)
        parts.append(f"{key}: the next run's median inside it in {following} of {len(pairs)} "
                     f"({following / len(pairs):.0%}), the reference median in {reference} of {len(pairs)}; "
                     f"half-widths {min(widths, default=0):.2%} to {max(widths, default=0):.2%}, "
                     f"median {statistics.median(widths or [0]):.2%}")
    reruns = [run["extra_info"]["latency_rerun95"] for run, _ in pairs if "latency_rerun95" in run["extra_info"]]
    rerun = f"median {statistics.median(reruns):.2%} in {len(reruns)} runs" if reruns else "none"
    stable = sum(bool(run["extra_info"].get("latency_stable")) for run, _ in pairs)
    return (f" Coverage over {len(pairs)} runs (bar: latency_ms_repeat95 holds the next run's median in at least 90 %): "
            f"{'; '.join(parts)}. Earlier reruns' spread "
            f"(latency_rerun95) {rerun}; {stable} of "
            f"{len(pairs)} runs reached ±1 % before the 5 s ceiling")


def check_rule(alternations: int = 5) -> bool:
    """The stopping rule alone (a CallRecorder, no pytest, no plugin) against adaptive_autorange, alternated in
    one process: where ``precision`` misses its bar and this does not, the gap is in the suite's context, not in
    the timer or the rule."""
    model, x = build_model("resnet18"), example_input(1, (3, 224, 224))
    ratios = []
    for _ in range(alternations):
        with torch.inference_mode():
            recorder = CallRecorder(lambda: model(x), "cpu")
            warm_up(recorder, "cpu")
            recorder.clear()
            rounds = StoppingRule(0.01, 5, max_time_s=5.0).run(recorder)
        ratios.append(statistics.median(rounds.latencies_s) * 1e3 / reference_median_ms(model, x))
    ratio = statistics.median(ratios)
    print(f"rule: resnet18 b1 224x224 cpu, {torch.get_num_threads()} threads. Stopping-rule median / adaptive_autorange "
          f"median, {alternations} alternations: {', '.join(f'{r:.3f}' for r in ratios)}; median {ratio:.3f} (bar: within 2 %)")
    return abs(ratio - 1) <= 0.02


if __name__ == "__main__":
    checks = {"truth": check_truth, "overhead": check_overhead, "precision": check_precision, "rule": check_rule}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checks", nargs="*", default=list(checks), help=f"any of {', '.join(checks)} (default: all)")
    parser.add_argument("--save", type=Path, help="precision: save each coverage run's rounds and reference here")
    parser.add_argument("--shape", type=int, default=224, help="precision: the input's side (default 224)")
    parser.add_argument("--alternations", type=int, default=5, help="precision, rule: alternations for the ratio (default 5)")
    parser.add_argument("--coverage-runs", type=int, default=20, help="precision: runs for the coverage (default 20; 0: none)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads in this process and its suite runs "
                        "(default: torch's own)")
    parser.add_argument("--history-runs", type=int, default=2, help="precision: runs before the coverage runs, their history "
                        "(default 2; 0: the first runs judged on their own rounds)")
    args = parser.parse_args()
    if unknown := set(args.checks) - set(checks):
        parser.error(f"unknown check {', '.join(sorted(unknown))}; accepted: {', '.join(checks)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = [check_precision(args.alternations, args.coverage_runs, args.save, args.shape, args.history_runs) if name == "precision" else checks[name]()
               for name in args.checks]
    sys.exit(0 if all(results) else 1)

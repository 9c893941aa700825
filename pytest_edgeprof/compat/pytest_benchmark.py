"""Everything edgeprof needs from pytest-benchmark beyond its documented fixture API.

- its options, read by their ``dest`` names (``--benchmark-max-time`` and the others);
- rounds measured elsewhere (an isolated child, the journal of a killed run) handed to the fixture as
  if it had timed them: ``BenchmarkFixture._make_stats`` and ``_mode`` are private, and the saved
  ``options`` are its stats' ``options`` dict; a fixture whose function raised (``has_error``) is left
  out of the saved JSON;
- the storage folder of its ``file://`` storage URI, and the machine id its autosave folders are named by;
- its session's list of benchmarks (``BenchmarkSession.benchmarks``): it saves nothing, neither
  ``--benchmark-json`` nor an autosave, while the list is empty, so a run that timed no cell adds a
  stand-in that reports an error (left out of the JSON, as a fixture whose function raised) and is
  falsy (left out of the table, as one without rounds);
- the JSON document it saves, made through its own hooks for a run that saved none (the results store).

Checked on pytest-benchmark 5.3.1 (pyproject.toml accepts 4.0 and later).
tests/test_compat_pytest_benchmark.py pins each of these on the installed version, so a release that
changes one fails there, not as a wrong number elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STORAGE_URI = "file://./.benchmarks"


@dataclass(frozen=True)
class BenchmarkOptions:
    """pytest-benchmark's options that decide how edgeprof's rounds are run and what they mean."""

    max_time_s: float | None = None  # --benchmark-max-time where given (command line or addopts); None: not given
    min_rounds: int = 5
    timer: str = "time.perf_counter"
    enabled: bool = True  # False under --benchmark-disable (one untimed call) or --benchmark-skip
    storage_uri: str = DEFAULT_STORAGE_URI
    compare: str | bool | None = None  # --benchmark-compare[=RUN]: True for the latest run


def options(config: Any) -> BenchmarkOptions:
    """The options of a pytest ``Config`` (pytest-benchmark's defaults where it is not loaded)."""

    def option(name: str, default: Any = None) -> Any:
        return config.getoption(name, default)

    timer = option("benchmark_timer")
    given = any(str(arg).startswith("--benchmark-max-time")  # pytest-benchmark's default (1 s) is not a choice
                for arg in [*config.invocation_params.args, *config.getini("addopts"), *os.environ.get("PYTEST_ADDOPTS", "").split()])
    return BenchmarkOptions(
        max_time_s=float(option("benchmark_max_time")) if given else None,
        min_rounds=int(option("benchmark_min_rounds") or 5),
        timer=str(timer) if timer is not None else "time.perf_counter",
        enabled=not (option("benchmark_disable", False) or option("benchmark_skip", False)),
        storage_uri=option("benchmark_storage") or DEFAULT_STORAGE_URI,
        compare=option("benchmark_compare"),
    )


def storage_folder(uri: str | Path | None) -> Path:
    """The folder of a ``--benchmark-storage`` URI (``file://./.benchmarks``) or plain path; for a
    storage that is no folder (``elasticsearch+http://...``), the default folder, where the journal goes."""
    text = str(uri or DEFAULT_STORAGE_URI)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    return Path(".benchmarks") if "://" in text else Path(text)


def machine_id() -> str:
    """The folder pytest-benchmark autosaves this machine's runs in."""
    from pytest_benchmark.utils import get_machine_id

    return get_machine_id()


def timed_rounds(benchmark: Any) -> tuple[list[float], int] | None:
    """The rounds the fixture timed and will save, per round in seconds, and the calls per round; None
    when it timed none, or when the function raised (it then leaves the benchmark out of its JSON)."""
    stats = benchmark.stats
    if not stats or benchmark.has_error:
        return None
    return list(stats.stats.data), stats.iterations


def mark_used(benchmark: Any) -> None:
    """The fixture counts as used, as ``benchmark(...)`` would make it, by calls made elsewhere (rounds
    timed by the stopping rule, or under --isolate in a child), so it warns of no unused fixture."""
    benchmark._mode = "edgeprof"


def record_rounds(benchmark: Any, latencies_s: Sequence[float], iterations: int, max_time_s: float | None = None) -> None:
    """Give the fixture rounds measured elsewhere (per call, in seconds), as if it had timed them; with
    ``max_time_s``, the ceiling they ran under is what the saved ``options.max_time`` says (pytest-benchmark
    would save its own option, 1 s where not given, which edgeprof's rounds did not use)."""
    if not latencies_s:
        return
    stats = benchmark._make_stats(iterations)
    if max_time_s is not None:
        stats.options["max_time"] = max_time_s
    for latency in latencies_s:
        stats.update(latency * iterations)
    mark_used(benchmark)


class _NoTimings:
    """The stand-in ``save_without_timings`` adds: not saved (``has_error``), not shown (falsy)."""

    has_error = True

    def __bool__(self) -> bool:
        return False


def save_without_timings(config: Any) -> None:
    """Make pytest-benchmark save this run (its ``--benchmark-json``, its autosave) although no test gave it
    rounds, as when every cell failed or was skipped; call it before its session finishes. Nothing changes
    under --benchmark-disable, whose runs it never saves."""
    session = getattr(config, "_benchmarksession", None)
    if session is not None and not session.benchmarks and not session.disabled:
        session.benchmarks.append(_NoTimings())


def run_document(config: Any) -> dict[str, Any] | None:
    """The JSON document pytest-benchmark would save for this run (every timed benchmark with its rounds,
    machine and commit info, what plugins add through its update hooks), made as its ``handle_saving`` makes
    one, for a run that saved none itself; None where it is not loaded or the run is ``--benchmark-disable``d."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return None
    hook = config.hook
    machine_info = session.get_machine_info()
    commit_info = hook.pytest_benchmark_generate_commit_info(config=config)
    hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
    document: dict[str, Any] = hook.pytest_benchmark_generate_json(
        config=config, benchmarks=session.benchmarks, include_data=True, machine_info=machine_info,
        commit_info=commit_info)
    hook.pytest_benchmark_update_json(config=config, benchmarks=session.benchmarks, output_json=document)
    return document

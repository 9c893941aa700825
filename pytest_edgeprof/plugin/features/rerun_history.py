"""Each timed cell's median kept in pytest's cache, and the spread of this machine's earlier reruns in every
repeat interval: what no single run can see (the core and memory layout a process got, a machine that changed).

Registered whenever cells are timed and pytest's cache is on (not under ``-p no:cacheprovider``), as pytest's own
``cacheprovider`` keeps ``--lf``'s failures. The cache value ``edgeprof/rerun-medians`` holds, per pool (this
host, the device, torch's threads) and cell key, the last ``KEPT`` medians. After each timed cell, the ln-ratios
of consecutive medians of every cell of its pool in earlier runs give ``latency_stats.rerun_spread``; the cell's
repeat interval is widened to it, saved as ``latency_rerun95`` with ``latency_rerun_pairs``. A cell key names the
network's code and the run's conditions, so a ratio is always between two runs of the same thing. This run's
medians are added at the session's end (the last ``KEPT_CELLS`` cell keys of a pool are kept);
``--cache-clear`` forgets them all.
"""

from __future__ import annotations

import math
import platform
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgeprof.errors import EdgeprofWarning
from pytest_edgeprof.latency_stats import rerun_spread
from pytest_edgeprof.metrics import number
from pytest_edgeprof.plugin.extension import CellFeature

if TYPE_CHECKING:
    from pytest_edgeprof.measurement import CellKey, Measurement

CACHE_KEY = "edgeprof/rerun-medians"
KEPT = 10  # medians kept per cell key: the history follows the machine as it is now
KEPT_CELLS = 2000  # cell keys kept per pool, the most recently measured


class RerunHistoryPlugin(CellFeature):
    def __init__(self, config: pytest.Config, cache: pytest.Cache) -> None:
        self._cache = cache
        self.pools: dict[str, dict[str, list[float]]] = {}
        try:
            self.pools = read_history(cache.get(CACHE_KEY, None))
        except ValueError as exc:  # said among the run's warnings, as pytest says its own at configure
            config.issue_config_time_warning(EdgeprofWarning(str(exc)), stacklevel=2)
        self._spreads: dict[str, tuple[float, int] | None] = {}  # per pool, from the earlier runs only
        self._measured: dict[tuple[str, str], float] = {}  # (pool, cell key) -> this run's median in ms

    def after_cell(self, measurement: Measurement, key: CellKey) -> None:
        latency = measurement.latency
        if latency is None or not latency.samples_s:  # untimed, failed, or a prediction only
            return
        pool = pool_of(key)
        if pool not in self._spreads:
            self._spreads[pool] = spread_of(self.pools.get(pool, {}))
        spread = self._spreads[pool]
        if spread is not None:
            measurement.latency = latency.with_rerun(*spread)
        self._measured[(pool, key.text)] = latency.median_ms

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """This run's medians added to the cache as it is now (pytest-xdist's workers each add their own cells)."""
        if not self._measured:
            return
        try:
            pools = read_history(self._cache.get(CACHE_KEY, None))
        except ValueError:  # said at the start
            pools = {}
        for (pool, cell), median_ms in self._measured.items():
            cells = pools.setdefault(pool, {})
            cells[cell] = [*cells.pop(cell, []), median_ms][-KEPT:]  # re-inserted: the dict runs from least recent
            for stale in list(cells)[:-KEPT_CELLS]:  # cells of code long changed
                del cells[stale]
        self._cache.set(CACHE_KEY, {"format": 1, "pools": pools})


def pool_of(key: CellKey) -> str:
    """The cells whose reruns vary alike: one host, one device, one thread count."""
    return f"{platform.node()}|{key.device}|threads={key.conditions.get('threads', '')}"


def spread_of(cells: dict[str, list[float]]) -> tuple[float, int] | None:
    """The pool's rerun spread and how many ratios it came from; None without any (``latency_stats.rerun_spread``)."""
    ratios = [math.log(later / earlier) for medians in cells.values() for earlier, later in zip(medians, medians[1:])]
    spread = rerun_spread(ratios)
    return None if spread is None else (spread, len(ratios))


def read_history(value: Any) -> dict[str, dict[str, list[float]]]:
    """The cache value as this plugin wrote it; ValueError saying what it should be for anything else."""
    if value is None:
        return {}
    pools = value.get("pools") if isinstance(value, dict) and value.get("format") == 1 else None
    if isinstance(pools, dict) and all(
            isinstance(cells, dict) and all(isinstance(medians, list) and all(_positive(m) for m in medians)
                                            for medians in cells.values()) for cells in pools.values()):
        return {pool: {cell: [float(m) for m in medians] for cell, medians in cells.items()} for pool, cells in pools.items()}
    raise ValueError(f"pytest's cache value {CACHE_KEY} is not the medians edgeprof keeps (a format 1 object of "
                     "pools, cells and lists of positive numbers): ignored, and rewritten at the end of this run")


def _positive(value: Any) -> bool:
    found = number(value)  # a finite int or float, not a bool
    return found is not None and found > 0

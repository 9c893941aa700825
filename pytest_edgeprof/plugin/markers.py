"""The plugin's markers. Each marker is a function whose signature is its ``pytest --markers`` help,
as in pytest-memray; the budget marker's keywords are the budgetable metrics of the registry."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import BUDGETS

if TYPE_CHECKING:
    from pytest_edgeprof.budgets import Budget


def budget(**limits: str | float) -> dict[str, Budget]:
    """resource budgets for this test's cells, e.g. @pytest.mark.budget(memory='2.6GB', latency='50ms');
    units: B/kB/MB/GB or KiB/MiB/GiB, us/ms/s, mJ/J, ips, percent for top1/top5"""
    from pytest_edgeprof.budgets import parse_budget  # imported by a test that has the marker, not by every run

    return {metric: parse_budget(metric, value) for metric, value in limits.items()}


budget.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # set at runtime; typeshed's functions lack it
    [inspect.Parameter(m.name, inspect.Parameter.KEYWORD_ONLY, default=None) for m in BUDGETS]
)

MARKERS: dict[str, Callable[..., dict[str, Budget]]] = {"budget": budget}


def marker_help(name: str) -> str:
    """``budget(*, memory=None, ...): resource budgets ...`` for ``config.addinivalue_line("markers", ...)``."""
    function = MARKERS[name]
    doc = " ".join((function.__doc__ or "").split())
    return f"{name}{inspect.signature(function)}: {doc}"


def marker_budgets(item: pytest.Item) -> dict[str, Budget]:
    """The budgets of the test's ``budget`` markers (the closest marker wins per metric)."""
    budgets: dict[str, Budget] = {}
    for marker in reversed(list(item.iter_markers("budget"))):
        if marker.args:
            raise pytest.UsageError(f"{item.nodeid}: budget marker takes keywords only, e.g. budget(memory='2.6GB')")
        try:
            budgets.update(budget(**marker.kwargs))
        except UsageError as exc:
            raise pytest.UsageError(f"{item.nodeid}: budget marker: {exc}") from None
    return budgets

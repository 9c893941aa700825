"""Fitting the time model per board and runtime on published latencies, with models held out.

The models of a board and runtime are split once (sorted by name, every third held out), so a
held-out model was never fitted on. The parameters are fitted on the rest by least squares on the
log of predicted over measured (relative error, as a user reads it). The 90 % prediction interval is
the 5th to 95th percentile of the out-of-sample error among the fitted models (each predicted by
parameters fitted without it: leave one model out), so the held-out models check the interval too.
A published figure below the physical floor (``latency.floor_s``) is impossible: reported, never fitted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_edgeprof.measure.predict.calibration import Published
from pytest_edgeprof.measure.predict.graph import ModelGraph, model_graph
from pytest_edgeprof.measure.predict.latency import Machine, Params, floor_s, forward_s

START = Params(0.5, 0.2, 0.5, 50e-6)
LOWER = Params(0.02, 0.005, 0.02, 1e-6)
UPPER = Params(1.0, 1.0, 1.0, 2e-3)


@dataclass
class GroupFit:
    board: str
    runtime: str
    params: Params
    interval: tuple[float, float]  # multipliers of the prediction: 5th and 95th percentile of measured/predicted
    fitted_on: list[str]
    held_out: list[str]
    impossible: list[str] = field(default_factory=list)  # "model precision b1: 3.1 ms < floor 3.4 ms"


def graph_of(row: Published) -> ModelGraph:
    return model_graph(row.model, row.batch, (3, *row.shape))


def predicted_s(row: Published, machine: Machine, params: Params) -> float:
    return forward_s(graph_of(row), row.runtime, machine, row.precision, params)


def below_floor(row: Published, machine: Machine) -> float | None:
    """The floor in seconds where ``row`` is below it, else None."""
    floor = floor_s(graph_of(row), machine, row.precision)
    return floor if row.latency_ms / 1e3 < floor else None


def split(models: Sequence[str]) -> tuple[list[str], list[str]]:
    ordered = sorted(set(models))
    return [m for i, m in enumerate(ordered) if i % 3 != 1], [m for i, m in enumerate(ordered) if i % 3 == 1]


def fit_params(rows: Sequence[Published], machine: Machine) -> Params:
    import numpy as np
    from scipy.optimize import least_squares

    def residuals(logs: np.ndarray) -> np.ndarray:
        params = Params(*np.exp(logs))
        return np.array([math.log(predicted_s(r, machine, params) * 1e3 / r.latency_ms) for r in rows])

    result = least_squares(residuals, np.log(START.as_list()), bounds=(np.log(LOWER.as_list()), np.log(UPPER.as_list())))
    return Params(*(float(v) for v in np.exp(result.x)))


def fit_group(rows: Sequence[Published], machine: Machine) -> GroupFit:
    """Fit one board and runtime; ``rows`` all of that group."""
    impossible = [f"{r.model} {r.precision} b{r.batch}: {r.latency_ms:g} ms < floor {floor * 1e3:.3g} ms"
                  for r in rows if (floor := below_floor(r, machine)) is not None]
    usable = [r for r in rows if below_floor(r, machine) is None]
    fitted_on, held_out = split([r.model for r in usable])
    train = [r for r in usable if r.model in fitted_on]
    params = fit_params(train, machine)
    errors = []
    for model in fitted_on:  # leave one model out: the error the interval is drawn from
        others = fit_params([r for r in train if r.model != model], machine)
        errors += [r.latency_ms / (predicted_s(r, machine, others) * 1e3) for r in train if r.model == model]
    return GroupFit(rows[0].board, rows[0].runtime, params, (_quantile(errors, 0.05), _quantile(errors, 0.95)),
                    fitted_on, held_out, impossible)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

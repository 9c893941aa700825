"""How well ``edgeprof predict`` predicts latencies published from real boards (issue 23).

    python tools/check_predict.py            # fit, then print the shares and the interval's coverage
    python tools/check_predict.py --write    # the same, and rewrite pytest_edgeprof/measure/predict/fitted.json

Per board and runtime: the models are split once (sorted, every third held out, never fitted on); the
time model is fitted on the rest; the 90 % interval comes from the fitted models' leave-one-model-out
errors; a board and runtime with fewer than MIN_FIT_MODELS models is not fitted, its rows check the
parameters it borrows from another board instead (all held out). Printed: the shares within ±10/±25/±50 % in-sample and held out, the interval's coverage of the
held-out latencies, and the published figures below the physical floor (impossible, not fitted).
Bars (held out): ≥80 % within ±25 % (eager PyTorch ≥70 %), the interval covering ≥80 %.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_edgeprof.measure.predict.boards import BORROWS, machine  # noqa: E402
from pytest_edgeprof.measure.predict.calibration import Published, load  # noqa: E402
from pytest_edgeprof.measure.predict.fit import GroupFit, below_floor, fit_group, predicted_s  # noqa: E402
from pytest_edgeprof.measure.predict.table import Entry, key, save  # noqa: E402
from pytest_edgeprof.power_modes import highest  # noqa: E402

BANDS = (0.10, 0.25, 0.50)
# A board and runtime with published latencies of fewer models is not fitted (four parameters, a third held
# out): its rows check the parameters it borrows (boards.BORROWS), every row held out.
MIN_FIT_MODELS = 8


def _shares(errors: list[float]) -> str:
    return "  ".join(f"{sum(e <= band for e in errors) / len(errors):4.0%}" if errors else "   -" for band in BANDS)


def _too_few(rows: list[Published], group: tuple[str, str]) -> bool:
    """Fewer models than a fit with held-out models needs: the group checks its borrowed parameters instead."""
    return len({r.model for r in rows if r.group == group}) < MIN_FIT_MODELS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite pytest_edgeprof/measure/predict/fitted.json")
    args = parser.parse_args()
    rows = load()
    entries: dict[str, Entry] = {}
    totals: dict[str, list[float]] = {"in": [], "held": [], "held_eager": [], "held_fused": []}
    covered = held_count = 0
    print(f"{len(rows)} published latencies; shares within ±10 / ±25 / ±50 %")
    print(f"{'board / runtime':<46} {'rows':>4}  {'in-sample':<16} {'held out':<16} {'interval':<14} coverage")
    groups = sorted({r.group for r in rows}, key=lambda g: (_too_few(rows, g), g))  # fitted groups first
    for board, runtime in groups:
        group = [r for r in rows if r.group == (board, runtime)]
        if _too_few(rows, (board, runtime)):  # not fitted: the borrowed parameters, checked on every row
            source = BORROWS[board]
            at = machine(board, highest(board), source)
            borrowed = entries[key(source, runtime)]
            fitted = GroupFit(board, runtime, borrowed.params, borrowed.interval, [], sorted({r.model for r in group}),
                              [f"{r.model} {r.precision} b{r.batch}: {r.latency_ms:g} ms < floor {floor * 1e3:.3g} ms"
                               for r in group if (floor := below_floor(r, at)) is not None])
            board_label = f"{board} (borrows {source})"
        else:
            at = machine(board, highest(board), board)
            fitted = fit_group(group, at)
            board_label = board
        low, high = fitted.interval
        inside, held = [], []
        hits = 0
        for row in group:
            predicted = predicted_s(row, at, fitted.params) * 1e3
            error = abs(predicted / row.latency_ms - 1)
            if row.model in fitted.held_out:
                held.append(error)
                hits += predicted * low <= row.latency_ms <= predicted * high
            elif row.model in fitted.fitted_on:
                inside.append(error)
        covered, held_count = covered + hits, held_count + len(held)
        totals["in"] += inside
        totals["held"] += held
        totals["held_eager" if runtime == "eager" else "held_fused"] += held
        print(f"{board_label + ' / ' + runtime:<46} {len(group):>4}  {_shares(inside):<16} {_shares(held):<16} "
              f"x{low:.2f}-x{high:.2f}   {hits / len(held):4.0%}")
        for line in fitted.impossible:
            print(f"  impossible (below the physical floor, not fitted): {line}")
        if board_label != board:
            continue
        entries[key(board, runtime)] = Entry(fitted.params, fitted.interval, tuple(fitted.fitted_on),
                                             tuple(fitted.held_out), sum(e <= 0.25 for e in held) / len(held),
                                             len(held), tuple(sorted({r.precision for r in group})))
    print(f"{'all':<46} {len(rows):>4}  {_shares(totals['in']):<16} {_shares(totals['held']):<16} "
          f"{'':<14} {covered / held_count:4.0%}")
    eager, fused = totals["held_eager"], totals["held_fused"]
    within = sum(e <= 0.25 for e in totals["held"]) / len(totals["held"])
    print(f"held out within ±25 %: all {within:.0%} (bar 80 %), eager "
          f"{sum(e <= 0.25 for e in eager) / len(eager):.0%} (bar 70 %), TensorRT "
          f"{sum(e <= 0.25 for e in fused) / len(fused):.0%}; interval coverage {covered / held_count:.0%} (bar 80 %)")
    if args.write:
        save(entries)
        print("wrote pytest_edgeprof/measure/predict/fitted.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fitted table shipped with the package (``fitted.json``): per board and runtime, the parameters,
the 90 % interval's multipliers, the models fitted on and held out, and the held-out share within ±25 %.
``python tools/check_predict.py --write`` rewrites it from ``board_latencies.csv``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_edgeprof.measure.predict.latency import Params

FITTED_JSON = Path(__file__).resolve().parent / "fitted.json"


@dataclass(frozen=True)
class Entry:
    params: Params
    interval: tuple[float, float]
    fitted_on: tuple[str, ...]
    held_out: tuple[str, ...]
    held_out_within_25: float  # share of the held-out published latencies predicted within ±25 %
    held_out_rows: int
    precisions: tuple[str, ...]  # the precisions its published latencies were measured at


def key(board: str, runtime: str) -> str:
    return f"{board}/{runtime}"


def save(entries: dict[str, Entry], path: Path = FITTED_JSON) -> None:
    path.write_text(json.dumps({k: asdict(e) for k, e in sorted(entries.items())}, indent=1) + "\n")


def load(path: Path = FITTED_JSON) -> dict[str, Entry]:
    raw = json.loads(path.read_text())
    return {k: Entry(Params(**e["params"]), tuple(e["interval"]), tuple(e["fitted_on"]), tuple(e["held_out"]),
                     e["held_out_within_25"], e["held_out_rows"], tuple(e["precisions"])) for k, e in raw.items()}

"""The published board latencies the predictor is fitted on and checked against (``board_latencies.csv``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

CALIBRATION_CSV = Path(__file__).resolve().parents[2] / "board_latencies.csv"
COLUMNS = ("board", "model", "batch", "shape", "precision", "runtime", "power_mode", "latency_ms",
           "what_is_timed", "source")


@dataclass(frozen=True)
class Published:
    """One latency measured on a real board and published with its conditions."""

    board: str
    model: str
    batch: int
    shape: tuple[int, int]  # height, width
    precision: str
    runtime: str
    power_mode: str  # as published; "unstated" where the source does not say (taken as the board's highest)
    latency_ms: float
    what_is_timed: str
    source: str

    @property
    def group(self) -> tuple[str, str]:
        """What one set of parameters is fitted for: the board and the runtime."""
        return self.board, self.runtime


def load(path: Path = CALIBRATION_CSV) -> list[Published]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {', '.join(COLUMNS)}")
        return [_row(line) for line in reader]


def _row(line: dict[str, str]) -> Published:
    height, width = (int(side) for side in line["shape"].split("x"))
    return Published(line["board"], line["model"], int(line["batch"]), (height, width), line["precision"],
                     line["runtime"], line["power_mode"], float(line["latency_ms"]), line["what_is_timed"],
                     line["source"])

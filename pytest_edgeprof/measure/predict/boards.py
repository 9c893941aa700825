"""A board at a power mode as the time model sees it, and which calibrated board a board borrows from.

Peaks scale with the mode's GPU clock, bandwidth is the mode's, and the eager host cost per op scales
with the CPU clock against the mode the calibration was measured at (published figures that do not
state their mode are taken at the board's highest). A board with no published latencies borrows the
fitted parameters of the calibrated board nearest to it (``BORROWS``), its own figures otherwise.
"""

from __future__ import annotations

from pytest_edgeprof.device import BOARDS
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.predict.latency import Machine
from pytest_edgeprof.power_modes import PowerMode, highest, power_mode

# Calibrated board each other board borrows parameters from: tensor-core GPUs from the Volta board.
BORROWS = {"jetson-orin-nano": "jetson-agx-xavier", "jetson-orin-nano-super": "jetson-agx-xavier",
           "rtx-3070": "jetson-agx-xavier", "rtx-3060": "jetson-agx-xavier"}
# A desktop CPU's single thread against a Carmel core at 2.27 GHz: taken as twice as fast (an assumption).
_DESKTOP_CPU_HZ = 2 * 2265.6e6
PREDICTABLE = tuple(name for name, board in BOARDS.items() if board.figures is not None)


def check_board(name: str) -> str:
    text = name.strip().lower()
    if text not in PREDICTABLE:
        raise UsageError(f"unknown --target {name!r}; accepted: {', '.join(PREDICTABLE)}")
    return text


def machine(board: str, mode: PowerMode | None, calibrated_on: str) -> Machine:
    """``board`` at ``mode``; the host cost per op scaled against ``calibrated_on`` at its highest mode."""
    figures = BOARDS[board].figures
    assert figures is not None
    top = highest(board)
    clock = 1.0 if mode is None or top is None else mode.gpu_hz / top.gpu_hz
    bandwidth = figures.bandwidth_bytes_per_s if mode is None else mode.bandwidth_bytes_per_s
    return Machine({p: flops * clock for p, flops in figures.peak_flops.items()}, bandwidth,
                   _cpu_hz(calibrated_on, None) / _cpu_hz(board, mode))


def _cpu_hz(board: str, mode: PowerMode | None) -> float:
    mode = mode or highest(board)
    return mode.cpu_hz if mode is not None else _DESKTOP_CPU_HZ


def resolve_mode(board: str, name: str | None) -> PowerMode | None:
    return power_mode(board, name)

"""The sentinel: a fixed small workload timed between cells, whose spread over the session says how far the
machine's speed moved while the run went on, what a cell's own rounds cannot see.

A cell's rounds show the drift inside its few seconds; the next run of the cell reads minutes later, after other
cells, other processes, another clock state. The sentinel is the same work every time (a 128 x 128 float32
matrix product on the cell's device, its median over a few calls), so any change in its time is the machine's,
not the model's. It costs under 1 ms a reading on one CPU core here (two readings a cell), less on a GPU.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from pytest_edgeprof.measure.timing import CallRecorder

SENTINEL_SIZE = 128  # a square float32 matrix product: ~4 MFLOP, ~0.05 ms on one core here
SENTINEL_CALLS = 9  # timed calls a reading, after 2 untimed ones; the median of them is the reading


def sentinel_call(device: str) -> Callable[[], object]:
    """The sentinel's work on ``device``: one matrix product of fixed operands made here, once."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(SENTINEL_SIZE, SENTINEL_SIZE, generator=generator).to(device)
    b = torch.rand(SENTINEL_SIZE, SENTINEL_SIZE, generator=generator).to(device)

    def call() -> object:
        with torch.inference_mode():
            return a @ b

    return call


def read_sentinel(call: Callable[[], object], device: str) -> float:
    """One reading: the median seconds of ``SENTINEL_CALLS`` timed calls of ``call`` (2 untimed first).

    On a CPU it runs on one thread: a product this small split over several threads waits for whichever
    thread the scheduler put off, and read 0.2 ms or 16 ms by turns on the project's shared 2-core machine;
    on one thread it reads the core's speed (its clock, what else runs on it)."""
    threads = torch.get_num_threads()
    if not device.startswith("cuda"):
        torch.set_num_threads(1)
    try:
        recorder = CallRecorder(call, device)
        for _ in range(2):
            recorder()
        recorder.clear()
        for _ in range(SENTINEL_CALLS):
            recorder()
        return statistics.median(recorder.latencies_s())
    finally:
        torch.set_num_threads(threads)

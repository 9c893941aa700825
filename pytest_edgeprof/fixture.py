"""The ``edgeprof`` fixture's object: a device-aware timer around pytest-benchmark's ``benchmark``."""

from __future__ import annotations

import torch
from torch import nn

from .device import DeviceProfile
from .measurement import Cell, LatencyStats, Measurement
from .timing import CallRecorder, WarmUp, warm_up
from .zoo import example_input


class EdgeprofTimer:
    """Times one cell through pytest-benchmark and saves the DESIGN.md keys in its ``extra_info``.

    Call it once per test, like ``benchmark``::

        def test_mine(edgeprof):
            edgeprof(MyNet(), batch_size=4, input_shape=(3, 64, 64))

    The model is moved to the session's device and put in eval mode; the input is created there,
    so host-to-device transfer is not timed. Warm-up runs until the timings settle, outside the
    timed rounds; pytest-benchmark then calibrates and runs the rounds (``--benchmark-max-time``,
    ``--benchmark-min-rounds`` apply).
    """

    def __init__(self, benchmark, profile: DeviceProfile) -> None:  # benchmark: pytest-benchmark's fixture
        self._benchmark = benchmark
        self.profile = profile
        self.measurement: Measurement | None = None

    def __call__(
        self,
        model: nn.Module,
        example: torch.Tensor | None = None,
        *,
        cell: Cell | None = None,
        batch_size: int = 1,
        input_shape: tuple[int, int, int] = (3, 224, 224),
        name: str | None = None,
    ) -> Measurement:
        device = self.profile.torch_device
        if cell is None:
            if example is not None:
                batch_size, input_shape = example.shape[0], tuple(example.shape[1:])  # type: ignore[assignment]
            cell = Cell(name or type(model).__name__.lower(), "base", batch_size, input_shape)
        model = model.eval().to(device)
        example = example_input(cell.batch_size, cell.input_shape, device) if example is None else example.to(device)

        self._benchmark.group = cell.model
        recorder = CallRecorder(lambda: model(example), device)
        with torch.inference_mode():
            warmup = warm_up(recorder, device)
            recorder.clear()
            self._benchmark(recorder)
        measurement = Measurement(cell, self.profile.name, timer=recorder.method)
        measurement.latency = self._timed_latencies(recorder)
        measurement.extra.update(warmup_calls=warmup.calls, warmup_settled=warmup.settled)
        self._benchmark.extra_info.update(measurement.extra_info())
        self.measurement = measurement
        return measurement

    def _timed_latencies(self, recorder: CallRecorder) -> LatencyStats | None:
        """The timed rounds' per-call latencies; None where pytest-benchmark is disabled."""
        stats = self._benchmark.stats
        if not stats:
            return None
        if recorder.method == "cuda-events":
            # pytest-benchmark's calibration calls come first and one untimed call comes last.
            timed_calls = len(stats.stats.data) * stats.iterations
            return LatencyStats.of(recorder.latencies_s()[-timed_calls - 1 : -1])
        return LatencyStats.of(stats.stats.data)

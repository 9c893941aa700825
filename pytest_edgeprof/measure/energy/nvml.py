"""NVML (pynvml): the GPU's total-energy counter where it has one, else board power sampled at 20 Hz.

``nvml-counter`` reads ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta
and newer); ``nvml-power`` samples ``nvmlDeviceGetPowerUsage`` (mW) and integrates it. The NVML
device is matched to torch's CUDA device by UUID, since CUDA's and NVML's orders can differ.

Not verified on hardware (no GPU was lent to this work): a test runs on a CUDA machine and skips
without one. The 1 s minimum window comes from documentation and Zeus's measurements.
"""

from __future__ import annotations

import time
from typing import Any

from pytest_edgeprof.measure.energy.base import (
    EnergyMeter,
    EnergyReading,
    SampledPowerMeter,
    SourceUnavailable,
    _too_short,
)
from pytest_edgeprof.measure.energy.co2 import co2_kg


def _nvml_handle(device_index: int | None) -> Any:
    """The NVML handle of the torch CUDA device, matched by UUID (CUDA and NVML orders can differ)."""
    import torch

    if not torch.cuda.is_available():
        raise SourceUnavailable("CUDA is not available")
    try:
        import pynvml
    except ImportError:
        raise SourceUnavailable("pynvml (nvidia-ml-py) is not installed") from None
    index = torch.cuda.current_device() if device_index is None else device_index
    uuid = str(torch.cuda.get_device_properties(index).uuid)
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        raise SourceUnavailable(f"NVML did not start: {error}") from None
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}")
    except pynvml.NVMLError as error:
        pynvml.nvmlShutdown()
        raise SourceUnavailable(f"NVML has no device with UUID {uuid}: {error}") from None


class NvmlCounterMeter:
    """Difference of nvmlDeviceGetTotalEnergyConsumption (mJ since the driver loaded)."""

    source = "nvml-counter"
    # The counter advances at the power sensor's rate (tens of ms on the GPUs Zeus documents);
    # a 1 s window keeps that step a few percent of the figure. Not verified on hardware here.
    min_window_s = 1.0

    def __init__(self, handle: Any, country_iso_code: str | None = None) -> None:
        import pynvml

        self._nvml = pynvml
        self._handle = handle
        self._country = country_iso_code
        self._start: tuple[float, int] | None = None

    def _read(self) -> tuple[float, int]:
        millijoules = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        return time.perf_counter(), millijoules

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise RuntimeError("nvml-counter meter stopped before it was started")
        (t0, mj0), (t1, mj1) = self._start, self._read()
        self._start = None
        joules = (mj1 - mj0) / 1e3
        reading = EnergyReading(joules, t1 - t0, self.source, 2, "GPU board", co2_kg(joules, self._country))
        return _too_short(reading, self.min_window_s)

    def close(self) -> None:
        self._nvml.nvmlShutdown()


def open_nvml_meter(device_index: int | None, country_iso_code: str | None = None) -> EnergyMeter:
    """The counter meter where the GPU supports it, else power sampled at 20 Hz."""
    import pynvml

    handle = _nvml_handle(device_index)
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return NvmlCounterMeter(handle, country_iso_code)
    except pynvml.NVMLError_NotSupported:
        pass
    try:
        pynvml.nvmlDeviceGetPowerUsage(handle)
    except pynvml.NVMLError as error:
        pynvml.nvmlShutdown()
        raise SourceUnavailable(f"GPU reports neither energy nor power: {error}") from None
    return SampledPowerMeter(
        "nvml-power",
        lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1e3,
        reason="GPU board",
        country_iso_code=country_iso_code,
        on_close=pynvml.nvmlShutdown,
    )

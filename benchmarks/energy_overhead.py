"""What the energy sources cost: CodeCarbon's import and start/stop, and the rail sampler's rate.

Run from the repository root (about 15 s, mostly the two CodeCarbon windows):

    PYTHONPATH=. python benchmarks/energy_overhead.py

Not a pytest file: timings are reported, not asserted.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

from pytest_edgeprof.measure.energy import measure_energy, open_energy_meter

COLD_IMPORT = (
    "import time; t = time.perf_counter(); "
    "from pytest_edgeprof.measure.energy import _codecarbon; _codecarbon(); "
    "print(time.perf_counter() - t)"
)


def codecarbon_costs(empty_root: Path) -> None:
    cold = float(subprocess.run([sys.executable, "-c", COLD_IMPORT], capture_output=True, text=True).stdout)
    print(f"codecarbon cold import (fresh interpreter):      {cold:.3f} s")
    t = time.perf_counter()
    meter = open_energy_meter("cpu", sysfs_root=empty_root)
    print(f"open_energy_meter('cpu') -> {meter.source}: {time.perf_counter() - t:.3f} s")
    for window in (1, 2):
        t = time.perf_counter()
        meter.start()
        started = time.perf_counter()
        time.sleep(meter.min_window_s)
        stopping = time.perf_counter()
        reading = meter.stop()
        print(
            f"window {window}: start {started - t:.3f} s, stop {time.perf_counter() - stopping:.3f} s, "
            f"{reading.joules:.1f} J over {reading.seconds:.2f} s ({reading.reason})"
        )
    meter.close()


def sampler_rate_under_load(root: Path) -> None:
    device = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    device.mkdir(parents=True)
    (device / "rail_name_0").write_text("POM_5V_IN\n")
    (device / "in_power0_input").write_text("5000\n")
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 64, 64)

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    meter = open_energy_meter("cpu", sysfs_root=root)
    reading, calls = measure_energy(forward, meter, images_per_call=1, min_window_s=2.0)
    rate = (reading.samples - 1) / reading.seconds
    print(f"jetson-ina3221 sampler during resnet18 forwards: {rate:.1f} Hz over {reading.seconds:.2f} s, "
          f"{calls} calls")


def main() -> None:
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as tree:
        codecarbon_costs(Path(empty))
        sampler_rate_under_load(Path(tree))


if __name__ == "__main__":
    main()

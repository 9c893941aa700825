"""What energy costs: CodeCarbon's import and start/stop, the rail sampler's rate, and the suite's share.

Run from the repository root:

    PYTHONPATH=. python tools/energy_overhead.py          # the sources' costs (about 15 s)
    python tools/energy_overhead.py share [--runs 3] [--also ../main]

``share`` runs the suite (``pytest benchmarks/ -p no:cacheprovider`` on a reduced grid: resnet50 and
mobilenet_v3_large, batch 1, 160) with and without ``--no-energy``, alternated ``--runs`` times, each
run a fresh process, and reports wall and CPU times and the share of the default run that energy
costs. The plugin is the one on PYTHONPATH; ``--also /work/main`` measures another checkout's in the
same alternation (about 6 minutes for 3 runs of two checkouts on the 2-core development VM).

Not a pytest file: timings are reported, not asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
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


SUITE = Path(__file__).resolve().parents[1] / "benchmarks"
REDUCED_GRID = ["--device", "cpu", "--models", "resnet50,mobilenet_v3_large", "--batch-sizes", "1", "--shapes", "160"]


def suite_seconds(checkout: str, *extra: str) -> tuple[float, float]:
    """Wall and CPU time of one suite run in a fresh process (imports, collection, every cell, saving), with the
    plugin of ``checkout`` first on the path. CPU time moves less than wall time when other processes compete."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider", *REDUCED_GRID,
                   f"--benchmark-storage={tmp}", f"--journal={tmp}/journal.jsonl", *extra]
        cpu_before = _children_cpu_s()
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": checkout})
        seconds = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"the suite failed:\n{done.stdout[-2000:]}")
    return seconds, _children_cpu_s() - cpu_before


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def energy_share(runs: int, checkouts: list[str]) -> None:
    """Each checkout's suite with and without --no-energy, all alternated run by run."""
    times: dict[tuple[str, bool], list[tuple[float, float]]] = {(c, e): [] for c in checkouts for e in (True, False)}
    for _ in range(runs):  # alternated, so drift in the machine's speed hits every variant alike
        for checkout, energy in times:
            times[(checkout, energy)].append(suite_seconds(checkout, *([] if energy else ["--no-energy"])))
    print(f"suite on {' '.join(REDUCED_GRID[1:])}, {runs} alternations:")
    for checkout in checkouts:
        on, off = times[(checkout, True)], times[(checkout, False)]
        for index, clock in enumerate(("wall", "CPU")):
            share = statistics.median((a[index] - b[index]) / a[index] for a, b in zip(on, off))
            print(f"  {checkout}: {clock} time default {', '.join(f'{a[index]:.1f}' for a in on)} s, --no-energy "
                  f"{', '.join(f'{b[index]:.1f}' for b in off)} s; energy's share of the default run: median {share:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["sources", "share"], default="sources")
    parser.add_argument("--runs", type=int, default=3, help="share: alternations of the runs")
    parser.add_argument("--also", metavar="CHECKOUT", action="append", default=[],
                        help="share: another checkout's plugin measured in the same alternation, e.g. main's")
    args = parser.parse_args()
    if args.what == "share":
        energy_share(args.runs, [os.environ.get("PYTHONPATH") or ".", *args.also])
        return
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as tree:
        codecarbon_costs(Path(empty))
        sampler_rate_under_load(Path(tree))


if __name__ == "__main__":
    main()

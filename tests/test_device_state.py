"""Device state beside every cell, and the warning a soft latency gets with its likely cause."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_edgeprof.measure.device_state import likely_causes, read_state


def _sysfs(root: Path, governor: str, mhz: list[int], zones: dict[str, tuple[int, int]]) -> Path:
    """A tree laid out like Linux's cpufreq and thermal sysfs (values as the kernel writes them)."""
    for cpu, freq in enumerate(mhz):
        folder = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_governor").write_text(governor + "\n")
        (folder / "scaling_cur_freq").write_text(f"{freq * 1000}\n")
    for index, (name, (temp_c, trip_c)) in enumerate(zones.items()):
        zone = root / f"sys/class/thermal/thermal_zone{index}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(name + "\n")
        (zone / "temp").write_text(f"{temp_c * 1000}\n")
        (zone / "trip_point_0_temp").write_text(f"{trip_c * 1000}\n")
    return root


def test_cpufreq_and_thermal_zones_are_read_as_the_kernel_writes_them(tmp_path):
    root = _sysfs(tmp_path, "powersave", [1200, 2400], {"x86_pkg_temp": (92, 100), "acpitz": (40, 105)})
    state = read_state("cpu", sysfs_root=root)
    assert state["cpu_governors"] == ["powersave"] and (state["cpu_mhz_min"], state["cpu_mhz_max"]) == (1200, 2400)
    assert state["thermal_zones"]["x86_pkg_temp"] == {"temp_c": 92.0, "trip_c": 100.0}
    assert state["load_average_1m"] >= 0 and state["cores"] >= 1


def test_a_machine_without_cpufreq_or_thermal_zones_has_just_its_load(tmp_path):
    assert set(read_state("cpu", sysfs_root=tmp_path)) == {"load_average_1m", "cores", "threads"}


def test_likely_causes_name_what_the_readings_show(tmp_path):
    before = read_state("cpu", sysfs_root=_sysfs(tmp_path / "a", "powersave", [1200], {"cpu": (50, 100)}))
    after = read_state("cpu", sysfs_root=_sysfs(tmp_path / "b", "powersave", [2400], {"cpu": (95, 100)}))
    after["load_average_1m"] = after["threads"] + 3.0 * after["cores"]
    causes = likely_causes(before, after)
    assert causes[0].startswith("other processes busy (load average")
    assert "CPU governor powersave, not performance" in causes
    assert "CPU frequency moved (1200 -> 2400 MHz)" in causes
    assert "cpu at 95 C, near its trip point 100 C" in causes
    quiet = {"load_average_1m": 2.0, "cores": 2, "threads": 2, "cpu_governors": ["performance"]}  # its own load only
    assert likely_causes(quiet, quiet) == []


NOISY = """
import random, time
import torch
from torch import nn

class Noisy(nn.Module):
    '''Sleeps 1 to 6 ms at random: a spread no stopping rule narrows to 0.5 % in 0.3 s.'''
    def forward(self, x):
        time.sleep(random.uniform(0.001, 0.006))
        return x.mean()

def test_noisy(edgeprof):
    edgeprof(Noisy(), batch_size=1, input_shape=(3, 8, 8), name="noisy")
"""


def test_a_soft_latency_is_a_warning_with_its_likely_cause_and_the_state_is_saved(pytester):
    pytester.makepyfile(NOISY)
    result = pytester.runpytest("--device", "cpu", "--no-energy", "--latency-ci", "0.5%", "--benchmark-max-time", "0.3",
                                "-p", "no:cacheprovider", "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SoftLatencyWarning: noisy-base-b1-8x8: median latency did not reach ±0.5% within its "
                                 "0.3 s ceiling (--benchmark-max-time) (* rounds, coefficient of variation *%); likely: *"])
    info = json.loads((pytester.path / "out.json").read_text())["benchmarks"][0]["extra_info"]
    assert info["latency_stable"] is False and info["latency_cov"] > 0.1
    assert set(info["device_state"]) == {"before", "after"} and "load_average_1m" in info["device_state"]["after"]

"""Energy sources on sysfs trees laid out like a Jetson Nano, a Jetson Orin and an x86 RAPL host,
NVML where a GPU is present, and a real CodeCarbon estimate on this machine."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import torch

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.energy import (
    CodeCarbonMeter,
    EnergyReading,
    NoEnergyMeter,
    RaplMeter,
    SampledPowerMeter,
    SourceUnavailable,
    _RaplDomain,
    check_country,
    energy_per_image,
    find_ina3221_rails,
    find_rapl_packages,
    jetson_input_rail,
    measure_energy,
    open_energy_meter,
    parse_device,
    trapezoid_joules,
)

NANO_MODEL = "NVIDIA Jetson Nano Developer Kit\x00"
ORIN_MODEL = "NVIDIA Jetson Orin Nano Developer Kit\x00"


def write(path: Path, value: object) -> None:
    """Replace a sysfs-like file atomically, so a reader never sees it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def nano_tree(root: Path, in_mw: int = 2000, gpu_mw: int = 900, cpu_mw: int = 700) -> Path:
    """L4T 32 on a Nano: /sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0, powers in mW."""
    device = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for channel, (name, mw) in enumerate([("POM_5V_IN", in_mw), ("POM_5V_GPU", gpu_mw), ("POM_5V_CPU", cpu_mw)]):
        write(device / f"rail_name_{channel}", name)
        write(device / f"in_power{channel}_input", mw)
        write(device / f"in_voltage{channel}_input", 5000)
        write(device / f"in_current{channel}_input", mw // 5)
    return device


def orin_tree(root: Path, in_ma: int = 1000) -> Path:
    """L4T 35/36 on an Orin Nano: an hwmon device named ina3221, inN_input mV, currN_input mA."""
    write(root / "sys/class/hwmon/hwmon0/name", "soctherm")  # another hwmon device, not ours
    write(root / "sys/class/hwmon/hwmon0/temp1_input", 41000)
    hwmon = root / "sys/class/hwmon/hwmon1"
    write(hwmon / "name", "ina3221")
    for channel, (label, mv, ma) in enumerate(
        [("VDD_IN", 5000, in_ma), ("VDD_CPU_GPU_CV", 5000, 700), ("VDD_SOC", 5000, 600)], start=1
    ):
        write(hwmon / f"in{channel}_label", label)
        write(hwmon / f"in{channel}_input", mv)
        write(hwmon / f"curr{channel}_input", ma)
    write(hwmon / "in7_label", "sum of shunt voltages")  # a voltage with no current: not a rail
    write(hwmon / "in7_input", 12)
    return hwmon


def rapl_tree(root: Path, start_uj: tuple[int, int] = (900_000, 5_000), max_uj: int = 1_000_000) -> Path:
    """x86 powercap: two packages, a core subzone, psys and an mmio twin (only packages count)."""
    powercap = root / "sys/class/powercap"
    zones = {
        "intel-rapl:0": ("package-0", start_uj[0]),
        "intel-rapl:1": ("package-1", start_uj[1]),
        "intel-rapl:0:0": ("core", 123),
        "intel-rapl:2": ("psys", 777_777),
        "intel-rapl-mmio:0": ("package-0", 555),
    }
    for zone, (name, uj) in zones.items():
        write(powercap / zone / "name", name)
        write(powercap / zone / "energy_uj", uj)
        write(powercap / zone / "max_energy_range_uj", max_uj)
    return powercap


def idle(seconds: float = 0.02) -> None:
    time.sleep(seconds)


# ------------------------------------------------------------------------------------ integration


def test_trapezoid_integrates_timestamped_samples_not_their_average():
    # 2 W for 1 s, then a ramp 2 -> 6 W over 0.5 s: 2 + 2 = 4 J (the mean of samples would say 3.33 W).
    samples = [(10.0, 2.0), (11.0, 2.0), (11.5, 6.0)]
    assert trapezoid_joules(samples) == pytest.approx(4.0)
    assert trapezoid_joules(samples[:1]) == 0.0


def test_reading_average_power():
    assert EnergyReading(6.0, 2.0, "rapl", 5).avg_power_w == 3.0
    assert EnergyReading(None, 2.0, "rapl", 5, "why").avg_power_w is None


# ------------------------------------------------------------------------------------ Jetson


def test_nano_iio_tree_reads_all_rails_and_picks_the_input_rail(tmp_path):
    nano_tree(tmp_path)
    assert [rail.name for rail in find_ina3221_rails(tmp_path)] == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    rail = jetson_input_rail(tmp_path, NANO_MODEL)
    assert rail.name == "POM_5V_IN"
    assert rail.read_watts() == pytest.approx(2.0)


@pytest.mark.serial  # a bound on time or rate: `make test` runs it alone
def test_nano_energy_is_the_input_rail_integrated_not_the_sum_of_rails(tmp_path):
    nano_tree(tmp_path, in_mw=2000, gpu_mw=900, cpu_mw=700)
    meter = open_energy_meter("cuda", jetson_model=NANO_MODEL, sysfs_root=tmp_path)
    assert meter.source == "jetson-ina3221"
    reading, calls = measure_energy(idle, meter, images_per_call=4)
    meter.close()
    assert reading.seconds >= meter.min_window_s and calls >= 1
    assert reading.joules == pytest.approx(2.0 * reading.seconds, rel=1e-9)  # 3.6 W if rails were summed
    assert reading.avg_power_w == pytest.approx(2.0)
    assert "module input" in reading.reason and "POM_5V_IN" in reading.reason
    assert reading.samples >= 10 * reading.seconds
    assert reading.co2_kg is not None and reading.co2_kg > 0


def test_orin_hwmon_tree_multiplies_millivolts_by_milliamps_for_the_input_rail(tmp_path):
    orin_tree(tmp_path, in_ma=1000)
    rails = {rail.name: rail for rail in find_ina3221_rails(tmp_path)}
    assert set(rails) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}  # not the soctherm device, not in7
    rail = jetson_input_rail(tmp_path, ORIN_MODEL)
    assert rail.name == "VDD_IN"
    assert rail.read_watts() == pytest.approx(5.0)


def test_orin_rail_found_through_the_i2c_driver_path_too(tmp_path):
    hwmon = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    write(hwmon / "name", "ina3221")
    write(hwmon / "in1_label", "VDD_IN")
    write(hwmon / "in1_input", 5080)
    write(hwmon / "curr1_input", 1500)
    assert jetson_input_rail(tmp_path, ORIN_MODEL).read_watts() == pytest.approx(5.08 * 1.5)


def test_orin_energy_integrates_a_power_step_while_the_files_change(tmp_path):
    hwmon = orin_tree(tmp_path, in_ma=1000)  # 5 W
    meter = open_energy_meter("cpu", jetson_model=ORIN_MODEL, sysfs_root=tmp_path)
    assert isinstance(meter, SampledPowerMeter) and meter.source == "jetson-ina3221"
    write(hwmon / "curr2_input", 99_000)  # other rails change wildly: they must not count
    meter.start()
    time.sleep(0.5)
    write(hwmon / "curr1_input", 2000)  # 10 W from here
    switched_at = time.perf_counter()
    time.sleep(0.7)
    reading = meter.stop()
    meter.close()

    samples = meter.last_samples
    assert {watts for _, watts in samples} == {5.0, 10.0}
    assert reading.joules == pytest.approx(trapezoid_joules(samples))
    started, stopped = samples[0][0], samples[-1][0]
    expected = 5.0 * (switched_at - started) + 10.0 * (stopped - switched_at)
    widest_gap = max(t1 - t0 for (t0, _), (t1, _) in zip(samples, samples[1:]))
    assert abs(reading.joules - expected) <= 5.0 * widest_gap + 1e-9
    assert "module input (VDD_IN)" == reading.reason


def test_rails_without_an_input_rail_are_not_summed(tmp_path):
    # An AGX-like board: three rails, none of them the module input.
    hwmon = tmp_path / "sys/class/hwmon/hwmon1"
    write(hwmon / "name", "ina3221")
    for channel, label in enumerate(["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"], start=1):
        write(hwmon / f"in{channel}_label", label)
        write(hwmon / f"in{channel}_input", 5000)
        write(hwmon / f"curr{channel}_input", 500)
    with pytest.raises(SourceUnavailable, match="no input rail .*not summed"):
        jetson_input_rail(tmp_path)


def test_the_model_decides_which_input_rail_counts(tmp_path):
    nano_tree(tmp_path)
    with pytest.raises(SourceUnavailable, match="VDD_IN"):
        jetson_input_rail(tmp_path, ORIN_MODEL)
    assert jetson_input_rail(tmp_path, None).name == "POM_5V_IN"


def test_a_failed_rail_read_mid_window_gives_no_figure(tmp_path):
    device = nano_tree(tmp_path)
    meter = open_energy_meter("cpu", sysfs_root=tmp_path)
    meter.start()
    (device / "in_power0_input").unlink()
    time.sleep(0.1)
    reading = meter.stop()
    assert reading.joules is None and "power reading failed" in reading.reason


# ------------------------------------------------------------------------------------ RAPL


def test_rapl_reads_package_domains_only(tmp_path):
    rapl_tree(tmp_path)
    assert [domain.path.name for domain in find_rapl_packages(tmp_path)] == ["intel-rapl:0", "intel-rapl:1"]


def test_rapl_counter_wraparound_adds_the_range(tmp_path):
    powercap = rapl_tree(tmp_path, start_uj=(900_000, 5_000), max_uj=1_000_000)
    meter = open_energy_meter("cpu", sysfs_root=tmp_path)
    assert isinstance(meter, RaplMeter)
    meter.start()
    write(powercap / "intel-rapl:0/energy_uj", 50_000)  # wrapped: 100_000 to the top, 50_000 after
    write(powercap / "intel-rapl:1/energy_uj", 105_000)
    write(powercap / "intel-rapl:2/energy_uj", 999_999)  # psys: must not count
    time.sleep(meter.min_window_s + 0.05)
    reading = meter.stop()
    meter.close()
    assert reading.source == "rapl"
    assert reading.joules == pytest.approx(0.15 + 0.10)
    assert reading.samples >= 2


def test_rapl_domain_counts_every_wrap_it_polls(tmp_path):
    powercap = rapl_tree(tmp_path, max_uj=1_000_000)
    domain = _RaplDomain(powercap / "intel-rapl:0", 1_000_000)
    write(domain.path / "energy_uj", 900_000)
    domain.reset()
    for value in (50_000, 900_000, 50_000, 60_000):  # two wraps between polls
        write(domain.path / "energy_uj", value)
        domain.advance()
    assert domain.total_uj == 150_000 + 850_000 + 150_000 + 10_000


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_rapl_counter_is_skipped_with_the_reason(tmp_path):
    powercap = rapl_tree(tmp_path)
    (powercap / "intel-rapl:0/energy_uj").chmod(0)
    with pytest.raises(SourceUnavailable, match="not readable"):
        find_rapl_packages(tmp_path)


# ------------------------------------------------------------------------------------ choice order


def test_cpu_prefers_jetson_rail_then_rapl_then_codecarbon(tmp_path):
    both, rapl_only, empty = tmp_path / "both", tmp_path / "rapl", tmp_path / "empty"
    nano_tree(both)
    rapl_tree(both)
    rapl_tree(rapl_only)
    empty.mkdir()
    assert open_energy_meter("cpu", sysfs_root=both).source == "jetson-ina3221"
    assert open_energy_meter("cpu", sysfs_root=rapl_only).source == "rapl"
    meter = open_energy_meter("cpu", sysfs_root=empty)
    assert meter.source == "codecarbon-estimate"
    assert [why.split(":")[0] for why in meter.skipped] == ["jetson-ina3221", "rapl"]


def test_cpu_skips_a_jetson_tree_without_input_rail(tmp_path):
    orin_tree(tmp_path)
    rapl_tree(tmp_path)
    meter = open_energy_meter("cpu", jetson_model=NANO_MODEL, sysfs_root=tmp_path)  # no POM_5V_IN here
    assert meter.source == "rapl"
    assert "POM_5V_IN" in meter.skipped[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_cuda_without_nvml_never_falls_back_to_a_cpu_estimate(tmp_path):
    rapl_tree(tmp_path)
    meter = open_energy_meter("cuda:0", sysfs_root=tmp_path)
    assert isinstance(meter, NoEnergyMeter)
    meter.start()
    reading = meter.stop()
    assert reading.joules is None and "no power source for the GPU" in reading.reason
    assert "CUDA is not available" in reading.reason
    nano_tree(tmp_path)
    assert open_energy_meter("cuda", sysfs_root=tmp_path).source == "jetson-ina3221"


@pytest.mark.parametrize("device", ["mps", "cpu:0", "gpu", "cuda:x", ""])
def test_bad_device_is_a_usage_error(device):
    with pytest.raises(UsageError, match="use cpu, cuda or cuda:N"):
        parse_device(device)


def test_unknown_country_is_a_usage_error():
    assert check_country("fra") == "FRA"
    with pytest.raises(UsageError, match="'Atlantis'"):
        check_country("Atlantis")


# ------------------------------------------------------------------------------------ windows


def test_measure_energy_extends_the_window_and_counts_calls(tmp_path):
    nano_tree(tmp_path, in_mw=3000)
    meter = open_energy_meter("cpu", sysfs_root=tmp_path)
    reading, calls = measure_energy(idle, meter, images_per_call=8, min_window_s=1.2)
    assert reading.seconds >= 1.2 and calls >= 1.2 / 0.03
    energy = energy_per_image(reading, calls * 8)
    assert energy.source == "jetson-ina3221"
    assert energy.j_per_image == pytest.approx(reading.joules / (calls * 8))
    assert energy.avg_power_w == pytest.approx(3.0)


def test_a_window_shorter_than_the_source_supports_has_no_figure(tmp_path):
    nano_tree(tmp_path)
    meter = open_energy_meter("cpu", sysfs_root=tmp_path)
    reading, calls = measure_energy(idle, meter, images_per_call=1, min_window_s=0)
    assert calls == 1
    assert reading.joules is None and "shorter than the 1 s jetson-ina3221 needs" in reading.reason
    assert energy_per_image(reading, calls).j_per_image is None


@pytest.mark.parametrize("images", [0, -1, 1.5, True])
def test_images_per_call_must_be_a_positive_whole_number(tmp_path, images):
    with pytest.raises(UsageError, match="images_per_call"):
        measure_energy(idle, NoEnergyMeter("none"), images_per_call=images)


# ------------------------------------------------------------------------------------ NVML


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nvml_measures_a_real_gpu_workload():
    pytest.importorskip("pynvml")
    meter = open_energy_meter("cuda")
    assert meter.source in ("nvml-counter", "nvml-power")
    a = torch.randn(2048, 2048, device="cuda")

    def work() -> None:
        (a @ a).sum().item()  # .item() waits for the GPU

    reading, calls = measure_energy(work, meter, images_per_call=1)
    meter.close()
    assert reading.joules is not None and reading.seconds >= meter.min_window_s
    assert 1.0 < reading.avg_power_w < 2000.0


# ------------------------------------------------------------------------------------ CodeCarbon


class _Audit:
    """Records network and file-writing events (PEP 578 audit hooks) while ``on``."""

    on = False
    events: list[tuple[str, str]] = []
    installed = False

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if not cls.on:
            return
        if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "http.client.connect"):
            cls.events.append((event, repr(args)[:200]))
        elif event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writes and path != os.devnull:  # subprocess opens /dev/null for the probes' stdin
                cls.events.append((event, repr(args)[:200]))

    @classmethod
    def install(cls) -> None:
        if not cls.installed:
            sys.addaudithook(cls.hook)
            cls.installed = True


def test_the_audit_sees_a_file_written(tmp_path_factory):
    _Audit.install()
    _Audit.events.clear()
    _Audit.on = True
    try:
        (tmp_path_factory.mktemp("control") / "written.txt").write_text("x")
    finally:
        _Audit.on = False
    assert [event for event, _ in _Audit.events] == ["open"]


def test_codecarbon_estimate_here_is_labelled_and_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meter = open_energy_meter("cpu", sysfs_root=tmp_path)  # empty tree: no rails, no RAPL
    assert isinstance(meter, CodeCarbonMeter)
    assert meter.min_window_s == 0.0  # modelled power x time: the timed rounds' own window is enough
    _Audit.install()
    _Audit.events.clear()
    _Audit.on = True
    try:
        reading, calls = measure_energy(lambda: time.sleep(0.05), meter, images_per_call=1, min_window_s=3.0)
        short = measure_energy(idle, meter, images_per_call=1)[0]
    finally:
        _Audit.on = False
    meter.close()

    assert _Audit.events == []  # no network, no file written
    assert list(tmp_path.iterdir()) == []  # in particular no emissions.csv
    assert reading.source == "codecarbon-estimate" and reading.reason.startswith("estimate")
    assert reading.seconds >= 3.0 and reading.samples >= 3
    assert reading.joules is not None and reading.joules > 0
    assert reading.co2_kg is not None and reading.co2_kg > 0
    assert short.seconds < 0.5 and short.joules is not None and short.reason.startswith("estimate")
    # the RAM constant (20 W here) dominates, the CPU part moves with the machine's load (0.8-8 W here)
    assert short.avg_power_w == pytest.approx(reading.avg_power_w, rel=0.3)

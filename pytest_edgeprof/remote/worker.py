"""The board's side of a remote cell: one file, Python 3.6 or later, the standard library only.

Run over SSH by the host with one JSON request on stdin (or directly: ``python worker.py < request.json``),
it answers in JSON lines: ``probe`` (what the board has), ``measure`` (one cell: warm-up, timed rounds under
measure/timing.StoppingRule's rule, peak memory, INA3221 energy, device state) or ``oom_check`` (whether the
out-of-memory killer ended a process). Where stdin is a pipe (over SSH) a thread watches it: when the host
goes away stdin ends and the worker exits at once, so nothing of ours is left running on the board.
"""
import collections
import glob
import json
import math
import os
import platform
import resource
import socket
import stat
import statistics
import sys
import threading
import time

WARM_UP = {"window": 3, "tolerance": 0.05, "max_seconds": 10.0, "max_calls": 500}
ENERGY_MIN_WINDOW_S = 1.0  # as the local Jetson meter: a window shorter than this is topped up with calls
EXACT_RANKS_UP_TO = 1000
INPUT_RAILS = ("POM_5V_IN", "VDD_IN")


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def read(path, default=None):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except OSError:
        return default


def probe(request):
    return {"event": "board", "python": platform.python_version(), "executable": sys.executable,
            "hostname": socket.gethostname(), "machine": platform.machine(), "model": read("/proc/device-tree/model"),
            "l4t": l4t_release(), "memory_bytes": memory_total(), "cpu": cpu_name(),
            "cores": os.cpu_count(), "runtimes": {name: runtime_version(name) for name in request.get("modules", [])}}


def l4t_release():
    """``R32.7.4`` from /etc/nv_tegra_release (``# R32 (release), REVISION: 7.4, ...``); None elsewhere."""
    fields = (read("/etc/nv_tegra_release") or "").lstrip("# ").split(",")
    revisions = [field.split(":", 1)[1].strip() for field in fields if "REVISION:" in field]
    return fields[0].split(" ")[0] + "".join("." + r for r in revisions[:1]) if fields[0] else None


def memory_total():
    lines = [line.split() for line in (read("/proc/meminfo") or "").splitlines() if line.startswith("MemTotal:")]
    return int(lines[0][1]) * 1024 if lines else 0


def cpu_name():
    for line in (read("/proc/cpuinfo") or "").splitlines():
        if line.lower().startswith(("model name", "hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def runtime_version(name):
    try:
        module = __import__(name)
    except Exception as exc:  # ImportError, or a runtime whose import itself fails
        return {"missing": "{}: {}".format(type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")}
    found = {"version": getattr(module, "__version__", "unknown")}
    if name == "onnxruntime":
        found["providers"] = list(module.get_available_providers())
    if name == "torch":
        found["cuda"] = bool(module.cuda.is_available())
    return found


def lower_rank(n, tail):
    """The largest l (1-based, 0 if none) with P(Binomial(n, 1/2) < l) <= ``tail``."""
    if n <= EXACT_RANKS_UP_TO:
        mass, rank, comb = 0.0, 0, 1  # comb: C(n, rank), kept exact in integers
        while rank < n // 2 and mass + comb / 2 ** n <= tail:
            mass += comb / 2 ** n
            comb = comb * (n - rank) // (rank + 1)
            rank += 1
        return rank
    log_all = math.lgamma(n + 1) - n * math.log(2)
    mass, rank = 0.0, 0
    while True:
        term = math.exp(log_all - math.lgamma(rank + 1) - math.lgamma(n - rank + 1))
        if mass + term > tail:
            return rank
        mass, rank = mass + term, rank + 1


def median_interval(samples, confidence=0.95):
    ordered = sorted(samples)
    rank = lower_rank(len(ordered), (1 - confidence) / 2)
    return None if rank == 0 else (ordered[rank - 1], ordered[len(ordered) - rank])


class StoppingRule:
    def __init__(self, precision=0.01, min_rounds=5, min_time_s=0.1, max_time_s=1.0):
        self.precision, self.min_rounds, self.min_time_s, self.max_time_s = precision, min_rounds, min_time_s, max_time_s

    def run(self, recorder):
        """Rounds of one call until the median is known within ``precision``, or ``max_time_s``: (latencies, stable)."""
        began, check_at = time.perf_counter(), max(self.min_rounds, 6)
        while True:
            recorder()
            elapsed, rounds = time.perf_counter() - began, recorder.calls
            if rounds >= check_at and elapsed >= self.min_time_s:
                latencies = recorder.latencies_s()
                if self.precise(latencies):
                    return latencies, True
                check_at = max(rounds + 1, int(rounds * 1.1))
            if elapsed >= self.max_time_s and rounds >= self.min_rounds:
                latencies = recorder.latencies_s()
                return latencies, self.precise(latencies)

    def precise(self, latencies):
        interval, median = median_interval(latencies), statistics.median(latencies)
        return interval is not None and max(median - interval[0], interval[1] - median) <= self.precision * median


class Recorder:
    """Times each call with perf_counter, the device synchronized before the clock stops."""

    def __init__(self, fn, sync):
        self._fn, self._sync, self._times = fn, sync, []

    def __call__(self):
        began = time.perf_counter()
        self._fn()
        self._sync()
        self._times.append(time.perf_counter() - began)

    @property
    def calls(self):
        return len(self._times)

    def latencies_s(self):
        return list(self._times)

    def clear(self):
        self._times = []


def warm_up(recorder, window, tolerance, max_seconds, max_calls):
    """As measure/timing.warm_up: until two consecutive windows' medians agree within ``tolerance``."""
    began = time.perf_counter()
    while True:
        recorder()
        times, elapsed = recorder.latencies_s(), time.perf_counter() - began
        if len(times) >= 2 * window:
            previous, latest = statistics.median(times[-2 * window:-window]), statistics.median(times[-window:])
            if abs(latest - previous) <= tolerance * previous:
                return {"calls": len(times), "settled": True, "seconds": elapsed}
        if elapsed >= max_seconds or len(times) >= max_calls:
            return {"calls": len(times), "settled": False, "seconds": elapsed, "bounded": elapsed >= max_seconds}


# A deployed model: ``call`` runs one batch, ``sync`` waits for the device, ``deployment`` says what ran it.
Runner = collections.namedtuple("Runner", "call sync deployment gpu")


def numpy_input(shape, dtype):
    import numpy
    return numpy.random.rand(*shape).astype(dtype)


def onnxruntime_runner(request):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False  # a call's memory comes and goes with it, for the resident peak to see
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # the board's cores this process may run on, as a local cell uses the host's (torch's default); a request may set them
    options.intra_op_num_threads = int(request.get("threads") or usable_cores())
    available = onnxruntime.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]  # never Azure's
    session = onnxruntime.InferenceSession(request["artifact"], options, providers=providers)
    used = session.get_providers()[0]
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    array = numpy_input(request["shape"], request["dtype"])
    deployment = {"runtime_version": "onnxruntime " + onnxruntime.__version__, "provider": used,
                  "options": {"enable_cpu_mem_arena": False, "graph_optimization_level": "ORT_ENABLE_ALL",
                              "intra_op_num_threads": options.intra_op_num_threads}}
    if used != "CUDAExecutionProvider":
        return Runner(lambda: session.run(None, {name: array}), lambda: None, deployment, gpu=False)
    value = onnxruntime.OrtValue.ortvalue_from_numpy(array, "cuda", 0)  # the input stays on the device
    binding = session.io_binding()
    binding.bind_ortvalue_input(name, value)
    binding.bind_output(output, "cuda")
    return Runner(lambda: session.run_with_iobinding(binding), lambda: None, deployment, gpu=True)


def cudart():
    """CUDA's runtime library (OSError where the board has none)."""
    import ctypes.util
    return ctypes.CDLL(ctypes.util.find_library("cudart") or "libcudart.so")


def tensorrt_runner(request):
    """The ONNX file as a TensorRT engine, built once and cached beside it (by ONNX digest, precision, TensorRT version)."""
    import ctypes

    import tensorrt
    logger = tensorrt.Logger(tensorrt.Logger.WARNING)
    engine_path = "{}-{}-trt{}.engine".format(request["artifact"][:-len(".onnx")], request["precision"], tensorrt.__version__)
    if not os.path.exists(engine_path):
        build_engine(tensorrt, logger, request, engine_path)
    with open(engine_path, "rb") as handle:
        engine = tensorrt.Runtime(logger).deserialize_cuda_engine(handle.read())
    context, cuda, pointers = engine.create_execution_context(), cudart(), []
    for index in range(engine.num_bindings):
        size = tensorrt.volume(engine.get_binding_shape(index)) * engine.get_binding_dtype(index).itemsize
        pointer = ctypes.c_void_p()
        if cuda.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(size)) != 0:
            raise MemoryError(f"cudaMalloc of {size} bytes failed: out of memory")
        pointers.append(pointer.value)
    array = numpy_input(request["shape"], request["dtype"])
    cuda.cudaMemcpy(ctypes.c_void_p(pointers[0]), ctypes.c_void_p(array.ctypes.data), ctypes.c_size_t(array.nbytes), 1)
    deployment = {"runtime_version": "tensorrt " + tensorrt.__version__, "provider": "TensorRT engine",
                  "options": {"engine": os.path.basename(engine_path)}}
    return Runner(lambda: context.execute_v2(pointers), cuda.cudaDeviceSynchronize, deployment, gpu=True)


def build_engine(tensorrt, logger, request, engine_path):
    builder = tensorrt.Builder(logger)
    network = builder.create_network(1 << int(tensorrt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = tensorrt.OnnxParser(network, logger)
    with open(request["artifact"], "rb") as handle:
        if not parser.parse(handle.read()):
            raise ValueError("TensorRT cannot parse the ONNX file: " + str(parser.get_error(0)))
    config = builder.create_builder_config()
    if request["precision"] == "fp16":
        config.set_flag(tensorrt.BuilderFlag.FP16)
    if request["precision"] == "int8":  # the QDQ nodes of the ONNX file carry the scales
        config.set_flag(tensorrt.BuilderFlag.INT8)
    built = builder.build_serialized_network(network, config)
    if built is None:
        raise ValueError("TensorRT could not build an engine for this model at " + request["precision"])
    with open(engine_path + ".part", "wb") as handle:
        handle.write(built)
    os.rename(engine_path + ".part", engine_path)


def torchscript_runner(request):
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module = torch.jit.load(request["artifact"], map_location=device).eval()
    example = torch.rand(*request["shape"], device=device, dtype=getattr(torch, request["dtype"]))

    def call():
        with torch.no_grad():
            module(example)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    deployment = {"runtime_version": "torch " + torch.__version__, "provider": device, "options": {"torchscript": True}}
    return Runner(call, sync, deployment, gpu=device == "cuda")


RUNNERS = {"onnxruntime": onnxruntime_runner, "tensorrt": tensorrt_runner, "torchscript": torchscript_runner}


def status_bytes(field):
    for line in (read("/proc/self/status") or "").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def resident_peak(call):
    """The process's resident high-water over one call, above its size before it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current resident size
        baseline = status_bytes("VmRSS")
        call()
        return max(0, status_bytes("VmHWM") - baseline), status_bytes("VmHWM"), "VmHWM after clear_refs reset"
    except (OSError, TypeError):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        call()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return max(0, after - before), after, "ru_maxrss growth (lower bound)"


def gpu_used_bytes():
    """Device memory in use: nvmap's figure for this process on a Jetson, cudaMemGetInfo elsewhere; None if neither."""
    pid = str(os.getpid())
    for line in (read("/sys/kernel/debug/nvmap/iovmm/clients") or "").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == pid:
            units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
            return int(float(parts[3][:-1]) * units[parts[3][-1]]) if parts[3][-1:] in units else int(parts[3])
    try:
        import ctypes
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        if cudart().cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) == 0:
            return total.value - free.value
    except (RuntimeError, OSError, AttributeError):
        pass
    return None


def memory(runner):
    used_before = gpu_used_bytes() if runner.gpu else None
    activation, peak_rss, method = resident_peak(lambda: (runner.call(), runner.sync()))
    found = {"activation_bytes": activation, "peak_rss_bytes": peak_rss, "method": "process resident high-water "
             f"over the call ({method})"}
    if runner.gpu:
        found["gpu_used_bytes"], found["gpu_used_before_bytes"] = gpu_used_bytes(), used_before
    return found


def input_rail():
    """The INA3221 input rail's reader (watts) and name, in the Nano (iio) or Orin (hwmon) layout; None if absent."""
    for device in sorted(glob.glob("/sys/bus/i2c/drivers/ina3221x/*/iio*device*")):
        for name_file in sorted(glob.glob(device + "/rail_name_*")):
            power = "{}/in_power{}_input".format(device, name_file.rsplit("_", 1)[1])
            if read(name_file, "").upper() in INPUT_RAILS and os.path.isfile(power):
                return (lambda p=power: float(read(p)) / 1e3), read(name_file)
    folders = glob.glob("/sys/class/hwmon/hwmon*") + glob.glob("/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*")
    for folder in sorted(folder for folder in set(folders) if read(folder + "/name") == "ina3221"):
        for label in sorted(glob.glob(folder + "/in*_label")):
            channel = os.path.basename(label)[2:-len("_label")]
            volts, amps = f"{folder}/in{channel}_input", f"{folder}/curr{channel}_input"
            if read(label, "").upper() in INPUT_RAILS and os.path.isfile(volts) and os.path.isfile(amps):
                return (lambda v=volts, a=amps: float(read(v)) * float(read(a)) / 1e6), read(label)
    return None


class PowerSampler(threading.Thread):
    """The input rail sampled every 50 ms (20 Hz) and integrated by the trapezoid rule."""

    def __init__(self, read_watts):
        threading.Thread.__init__(self, daemon=True)
        self.read_watts, self.samples, self.done = read_watts, [], threading.Event()

    def run(self):
        while not self.done.is_set():
            self.samples.append((time.perf_counter(), self.read_watts()))
            self.done.wait(0.05)
        self.samples.append((time.perf_counter(), self.read_watts()))

    def joules(self):
        pairs = zip(self.samples, self.samples[1:])
        return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in pairs)


def device_state():
    """Load, CPU clocks and governors, temperatures, GPU clock, power mode: as measure/device_state.read_state."""
    cpus = sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq"))
    mhz = [int(khz) // 1000 for khz in (read(cpu + "/scaling_cur_freq", "") for cpu in cpus) if khz.isdigit()]
    zones = sorted(glob.glob("/sys/class/thermal/thermal_zone*"))
    temps = {read(zone + "/type") or os.path.basename(zone): read(zone + "/temp", "") for zone in zones}
    gpu = [read(path, "") for path in glob.glob("/sys/devices/gpu.0/devfreq/*/cur_freq") + glob.glob("/sys/devices/17000000.g*/devfreq/*/cur_freq")]
    state = {"load_average_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
             "cpu_governors": sorted({read(cpu + "/scaling_governor") for cpu in cpus} - {None}),
             "thermal_zones": {name: {"temp_c": int(t) / 1000} for name, t in temps.items() if t.lstrip("-").isdigit()},
             "jetson_power_mode": (read("/var/lib/nvpmodel/status") or "").replace("pmode:", "").strip()}
    if mhz:
        state["cpu_mhz_min"], state["cpu_mhz_max"] = min(mhz), max(mhz)
    if gpu and gpu[0].isdigit():
        state["gpu_mhz"] = int(gpu[0]) // 1000000
    return {key: value for key, value in state.items() if value not in ("", [], {})}


def usable_cores():
    """The cores this process may run on (``taskset`` or a cpuset narrows them; ``os.cpu_count`` counts them all)."""
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) or 1  # Linux only


def measure(request):
    emit({"event": "started", "pid": os.getpid(), "oom_kills": oom_kills()})
    runner = RUNNERS[request["runtime"]](request)
    threads = request.get("threads") or usable_cores()
    recorder = Recorder(runner.call, runner.sync)
    settings = dict(WARM_UP, **request.get("warm_up", {}))
    warm = warm_up(recorder, settings["window"], settings["tolerance"], settings["max_seconds"], settings["max_calls"])
    recorder.clear()
    before, rail = device_state(), input_rail() if request.get("energy", True) else None
    sampler = PowerSampler(rail[0]) if rail else None
    if sampler:
        sampler.start()
    began = time.perf_counter()
    latencies, stable = StoppingRule(**request["rule"]).run(recorder)
    while sampler and time.perf_counter() - began < ENERGY_MIN_WINDOW_S:
        recorder()  # topped up: the rail needs a window of at least a second
    seconds = time.perf_counter() - began
    energy = {"source": "none", "reason": "no INA3221 input rail on this board" if request.get("energy", True)
              else "not measured (--no-energy)"}
    if sampler:
        sampler.done.set()
        sampler.join()
        energy = {"source": "jetson-ina3221", "joules": sampler.joules(), "avg_power_w": sampler.joules() / seconds,
                  "calls": recorder.calls, "reason": f"module input ({rail[1]})"}
    return {"event": "result", "latencies_s": latencies, "stable": stable, "timer": "perf_counter, device synchronized",
            "warmup": warm, "device_state": {"before": dict(before, threads=threads), "after": dict(device_state(), threads=threads)},
            "memory": memory(runner), "energy": energy, "deployment": runner.deployment}


def oom_kills():
    for line in (read("/proc/vmstat") or "").splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return None


def oom_check(request):
    """Whether the out-of-memory killer ended ``pid``: the kernel's log names it, or /proc/vmstat's count rose."""
    import subprocess
    log = subprocess.run(["dmesg"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode("utf-8", "replace")
    named = any("Killed process {}{}".format(request["pid"], end) in log for end in (" ", ","))
    before, now = request.get("oom_kills"), oom_kills()
    counted = before is not None and now is not None and now > before
    return {"event": "oom", "killed": named or counted,
            "how": "the kernel log names it" if named else "/proc/vmstat oom_kill rose" if counted else ""}


def watch_stdin():
    """Exit at once when the host goes away: over SSH stdin is a pipe that ends when the connection does."""
    mode = os.fstat(0).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return

    def watch():
        while os.read(0, 4096):
            pass
        os._exit(3)
    threading.Thread(target=watch, daemon=True).start()


def main():
    request = json.loads(sys.stdin.readline())
    watch_stdin()
    try:
        answer = {"probe": probe, "measure": measure, "oom_check": oom_check}[request["op"]]
        emit(answer(request))
    except Exception as exc:  # MemoryError too: out of memory, as a runtime's "failed to allocate"
        text = "{}: {}".format(type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        oom = isinstance(exc, MemoryError) or "out of memory" in text.lower() or "failed to allocate" in text.lower()
        kind = "oom" if oom else "failed"
        emit({"event": "error", "kind": kind, "message": text[:300]})


if __name__ == "__main__":
    main()

"""The board from the host over SSH, with real parts: Debian's sshd on 127.0.0.1 (generated keys, a free
port) and a "board" venv with only numpy and onnxruntime (no torch, no pytest, no edgeprof)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from loopback_board import NoBoard, memory_limited_python, start_sshd
from test_plugin_variants import SUITE

from pytest_edgeprof.latency_stats import _lower_rank
from pytest_edgeprof.measure.timing import StoppingRule
from pytest_edgeprof.remote import worker
from pytest_edgeprof.remote.address import BoardAddress, parse_board_address

WORKER = Path(worker.__file__)
CELL = "squeezenet1_1-base-onnxruntime-b1-32x32"
GRID = ["--models", "squeezenet1_1", "--shapes", "32", "--runtime", "onnxruntime", "--no-energy"]


@pytest.fixture(autouse=True)
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _board_args(server, python, *more):
    return ["--device", server.device, "--ssh-config", str(server.client_config), "--board-python", str(python), *more]


def _workers(cache: Path) -> list[int]:
    """Our worker processes on the loopback board: their cmdline runs a worker file in its cache."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and any(str(cache).encode() in part and b"worker-" in part for part in cmdline) \
                and not cmdline[0].endswith(b"sh"):
            found.append(int(entry.name))
    return found


def _when_a_worker_runs(cache: Path, action, after_s: float = 1.5) -> threading.Thread:
    """Run ``action`` on the workers that have run ``after_s`` (mid-cell), in a thread. The run's first worker
    only answers the probe before any cell, within a fraction of a second: it never gets that old; a cell of
    20000 rounds (--benchmark-min-rounds) runs for seconds, however quiet the machine."""
    def watch():
        deadline, first_seen = time.monotonic() + 120, {}
        while time.monotonic() < deadline:
            now, pids = time.monotonic(), _workers(cache)
            old = [pid for pid in pids if now - first_seen.setdefault(pid, now) >= after_s]
            if old:
                action(old)
                return
            time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_the_grid_runs_on_the_board_and_agrees_with_a_local_cell(pytester, sshd, board_python):
    pytester.makepyfile(SUITE)
    timing = ["--benchmark-max-time", "1", "--benchmark-min-rounds", "5"]
    args = [*_board_args(sshd, board_python), *GRID, "--batch-sizes", "1", "--runtime", "onnxruntime,eager", *timing]
    first = pytester.runpytest(*args, "-rs", "--benchmark-json=first.json")
    first.assert_outcomes(passed=1, skipped=1)
    # the board has no torch: said once up front, its eager cells skipped with the reason
    first.stdout.fnmatch_lines([f"edgeprof: device {sshd.device} (*: *; Python *; onnxruntime *; torch missing; over SSH)",
                                f"edgeprof: fp32 eager skipped on {sshd.device}: the board's * has no torch *"])
    assert first.stdout.str().count("fp32 eager skipped on") == 1
    first.stdout.fnmatch_lines([f"edgeprof: board {sshd.device}: artifacts copied * bytes in 2 file(s); 0 already there"])
    run = json.loads((pytester.path / "first.json").read_text())
    board = run["machine_info"]["edgeprof"]["board"]
    assert board["address"] == sshd.device and board["runtimes"]["torch"]["missing"].startswith("ModuleNotFoundError")
    info = run["benchmarks"][0]["extra_info"]
    assert (info["device"], info["provider"]) == (sshd.device, "CPUExecutionProvider")
    assert info["runtime_version"].startswith("onnxruntime ") and info["flops"] > 0 and info["peak_mem_bytes"] > 0
    assert run["benchmarks"][0]["stats"]["rounds"] == info["latency_samples"] >= 5  # the board's rounds, saved as timed
    # a second run copies nothing: the worker and the ONNX file are on the board by their digest
    second = pytester.runpytest(*args, "--benchmark-json=second.json")
    second.assert_outcomes(passed=1, skipped=1)
    second.stdout.fnmatch_lines([f"edgeprof: board {sshd.device}: artifacts copied 0 bytes in 0 file(s); 2 already there"])
    # the same cell measured here agrees with the board's (a loose bound: the same CPU, another process)
    local = pytester.runpytest("--device", "cpu", *GRID, "--batch-sizes", "1", *timing, "--benchmark-json=local.json")
    local.assert_outcomes(passed=1)
    here = json.loads((pytester.path / "local.json").read_text())["benchmarks"][0]["extra_info"]["latency_ms_median"]
    there = json.loads((pytester.path / "second.json").read_text())["benchmarks"][0]["extra_info"]["latency_ms_median"]
    assert 0.5 < there / here < 2, (there, here)


def test_an_eager_cell_runs_as_torchscript_on_a_board_with_torch(pytester, sshd):
    # this test run's own Python stands for a board with torch (a desktop GPU's, an Orin's), without the plugin in use
    pytester.makepyfile(SUITE)
    args = [*_board_args(sshd, sys.executable), "--models", "squeezenet1_1", "--shapes", "32", "--batch-sizes", "1",
            "--runtime", "eager", "--no-energy", "--benchmark-max-time", "0.5", "--benchmark-min-rounds", "9"]
    result = pytester.runpytest(*args, "--benchmark-json=eager.json")
    result.assert_outcomes(passed=1)
    info = json.loads((pytester.path / "eager.json").read_text())["benchmarks"][0]["extra_info"]
    assert (info["device"], info["runtime"]) == (sshd.device, "eager") and info["latency_samples"] >= 9
    assert info["runtime_version"].startswith("torch ") and info["peak_mem_bytes"] > 0
    [artifact] = (sshd.board_cache / "pytest-edgeprof" / "board" / "artifacts").glob("*.pt")
    assert torch.jit.load(str(artifact))(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)  # a TorchScript file, batch 1


def test_a_worker_killed_mid_cell_fails_that_cell_and_the_run_goes_on(pytester, sshd, board_python):
    pytester.makepyfile(SUITE)
    killer = _when_a_worker_runs(sshd.board_cache, lambda pids: [os.kill(pid, signal.SIGKILL) for pid in pids])
    result = pytester.runpytest(*_board_args(sshd, board_python), *GRID, "--batch-sizes", "1,2",
                                "--benchmark-max-time", "3", "--benchmark-min-rounds", "20000")
    killer.join()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["the worker on the board was killed by signal 9 (SIGKILL), not by the out-of-memory "
                                 f"killer ({CELL} on {sshd.device})"])


def test_sshd_killed_mid_run_fails_cells_then_skips_the_board(pytester, tmp_path, board_python):
    try:
        server = start_sshd(tmp_path / "sshd")
    except NoBoard as exc:
        pytest.skip(f"no sshd: {exc}")
    pytester.makepyfile(SUITE)
    killer = _when_a_worker_runs(server.board_cache, lambda pids: server.kill())
    try:
        result = pytester.runpytest(*_board_args(server, board_python), *GRID, "--batch-sizes", "1,2,3,4",
                                    "--benchmark-max-time", "2", "--benchmark-min-rounds", "20000", "-rs")
    finally:
        killer.join()
        server.kill()
    result.assert_outcomes(failed=3, skipped=1)
    result.stdout.fnmatch_lines([f"board {server.device}: connection lost: * ({CELL} on {server.device})",
                                 f"SKIPPED * board {server.device} skipped after 3 failures in a row (last: *"])
    assert not _workers(server.board_cache)  # nothing of ours left on the board


def test_a_worker_the_out_of_memory_killer_ends_is_out_of_memory_and_larger_batches_are_skipped(
        pytester, sshd, board_python, tmp_path):
    try:  # the board's Python in a 300 MB memory cgroup: the kernel's killer, as on a board out of RAM
        python, group = memory_limited_python(board_python, 300_000_000, tmp_path)
    except NoBoard as exc:
        pytest.skip(f"no out-of-memory killer to be had here: {exc}")
    try:
        pytester.makepyfile(SUITE)
        result = pytester.runpytest(*_board_args(sshd, python), "--models", "squeezenet1_1", "--shapes", "224",
                                    "--batch-sizes", "1,128,256", "--runtime", "onnxruntime", "--no-energy",
                                    "--benchmark-max-time", "0.3", "--benchmark-json=run.json", "-rs")
        result.assert_outcomes(passed=1, failed=1, skipped=1)
        result.stdout.fnmatch_lines(["*exceeds capacity (b=128 ran out of memory)*"])
        untimed = json.loads((pytester.path / "run.json").read_text())["edgeprof"]["untimed_cells"]
        (oom,) = [cell["extra_info"] for cell in untimed if cell["extra_info"]["batch_size"] == 128]
        assert oom["outcome"] == "out-of-memory" and "out-of-memory killer" in oom["error"], oom
    finally:
        for _ in range(50):  # the killed worker's cgroup empties once the kernel has reaped it
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def test_ctrl_c_on_the_host_leaves_no_worker_on_the_board(pytester, sshd, board_python):
    pytester.makepyfile(SUITE)
    main = threading.main_thread().ident
    interrupter = _when_a_worker_runs(sshd.board_cache, lambda pids: signal.pthread_kill(main, signal.SIGINT))
    result = pytester.runpytest(*_board_args(sshd, board_python), *GRID, "--batch-sizes", "1",
                                "--benchmark-max-time", "3", "--benchmark-min-rounds", "20000", no_reraise_ctrlc=True)
    interrupter.join()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    deadline = time.monotonic() + 10
    while _workers(sshd.board_cache) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _workers(sshd.board_cache)


def test_a_board_python_without_the_runtime_is_said_once_and_its_cells_skipped(pytester, sshd):
    python = shutil.which("python3")
    if subprocess.run([python, "-c", "import onnxruntime"], capture_output=True).returncode == 0:
        pytest.skip("this machine's python3 has onnxruntime")
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*_board_args(sshd, python), *GRID, "--batch-sizes", "1,2", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([f"edgeprof: fp32 onnxruntime skipped on {sshd.device}: the board's {python} "
                                 "(Python *) has no onnxruntime (ModuleNotFoundError: No module named 'onnxruntime')"])


def test_bad_board_input_is_one_line(pytester, tmp_path):
    pytester.makepyfile(SUITE)
    (tmp_path / "empty_config").write_text("")
    for args, said in [
        (["--device", "ssh://root@host:99999"], "--device 'ssh://root@host:99999': not a board address; accepted: ssh://"),
        (["--device", "ssh://host", "--ssh-config", str(tmp_path / "none")], "ssh config * is not a file"),
        (["--device", "ssh://nobody@127.0.0.1:1", "--ssh-config", str(tmp_path / "empty_config")],
         "*--device ssh://nobody@127.0.0.1:1: cannot reach the board: *port 1*"),
    ]:
        result = pytester.runpytest(*args, *GRID)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: *{said}*"])


def test_board_addresses_parse():
    assert parse_board_address("ssh://nvidia@jetson.local:2222") == BoardAddress("jetson.local", 2222, "nvidia")
    assert parse_board_address("ssh://[::1]") == BoardAddress("::1", 22, None)
    assert parse_board_address("SSH://10.0.0.2").text == "ssh://10.0.0.2"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript-based exporter, for opset 13
def test_the_worker_is_python_3_6_and_runs_directly(board_python, tmp_path):
    vermin = Path(shutil.which("vermin") or Path(os.sys.executable).with_name("vermin"))
    checked = subprocess.run([str(vermin), "--target=3.6-", "--violations", "--no-tips", str(WORKER)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    model = tmp_path / "conv.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3).eval(), (torch.rand(1, 3, 16, 16),), str(model), opset_version=13,
                      dynamo=False, input_names=["input"], output_names=["output"])
    request = {"op": "measure", "runtime": "onnxruntime", "artifact": str(model), "precision": "fp32",
               "shape": [1, 3, 16, 16], "dtype": "float32", "energy": True, "warm_up": {"max_seconds": 1},
               "rule": {"precision": 0.05, "min_rounds": 5, "min_time_s": 0.0, "max_time_s": 0.5}}
    (tmp_path / "request.json").write_text(json.dumps(request))
    with open(tmp_path / "request.json") as stdin:
        done = subprocess.run([str(board_python), str(WORKER)], stdin=stdin, capture_output=True, text=True, timeout=60)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [event["event"] for event in events] == ["started", "result"], done.stderr
    result = events[-1]
    assert len(result["latencies_s"]) >= 5 and result["memory"]["peak_rss_bytes"] > 0
    assert result["energy"]["source"] == "none" and "load_average_1m" in result["device_state"]["after"]


class Sequence:
    """A recorder whose calls take the given latencies, in order."""

    def __init__(self, latencies):
        self._all, self._taken = list(latencies), []

    def __call__(self):
        self._taken.append(self._all[len(self._taken)])

    @property
    def calls(self):
        return len(self._taken)

    def latencies_s(self):
        return list(self._taken)


@pytest.mark.parametrize("seed", range(4))
def test_the_worker_stops_at_the_same_round_as_a_local_cell(seed):
    generator = torch.Generator().manual_seed(seed)
    latencies = (1e-3 * (1 + 0.05 * torch.randn(3000, generator=generator).abs())).tolist()
    local = StoppingRule(0.01, 5, min_time_s=0.0, max_time_s=1e9).run(Sequence(latencies))
    board, stable = worker.StoppingRule(0.01, 5, 0.0, 1e9).run(Sequence(latencies))
    assert len(board) == len(local.latencies_s) and stable == local.stable
    for n in (6, 50, 999, 1001, 5000):  # the median's interval: the same ranks, exact and beyond EXACT_RANKS_UP_TO
        assert worker.lower_rank(n, 0.025) == _lower_rank(n, 0.025)


def test_the_board_holds_an_artifact_only_as_copied_a_damaged_copy_is_copied_again(sshd):
    from pytest_edgeprof.remote.artifacts import BoardCache
    from pytest_edgeprof.remote.connection import SshConnection

    connection = SshConnection(parse_board_address(sshd.device), sshd.client_config)
    data = os.urandom(4096)
    try:
        first = BoardCache(connection)
        path = first.place(data, "artifacts/check.bin")
        assert (first.files_copied, first.files_present) == (1, 0) and Path(path).read_bytes() == data  # loopback board
        again = BoardCache(connection)
        again.place(data, "artifacts/check.bin")
        assert (again.files_copied, again.files_present) == (0, 1)
        Path(path).write_bytes(data[:-1] + b"x")  # altered on the board
        repaired = BoardCache(connection)
        repaired.place(data, "artifacts/check.bin")
        assert (repaired.files_copied, repaired.files_present) == (1, 0) and Path(path).read_bytes() == data
    finally:
        connection.close()

"""A board over SSH as the host sees it: what it has (the worker's probe), the worker run for a request,
and what each way a worker can end means.

The worker (``worker.py``) is copied into the board's cache once, by its digest, and run as
``python3 worker.py`` with the request on stdin; stdin stays open while it runs, so when the host goes
away (Ctrl-C, a lost connection) the worker sees it end and exits: nothing of ours is left on the board.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_edgeprof.axes import RUNTIMES
from pytest_edgeprof.remote.address import BoardAddress
from pytest_edgeprof.remote.artifacts import BoardCache
from pytest_edgeprof.remote.connection import BoardUnreachable, SshConnection, _last_line

WORKER = Path(__file__).with_name("worker.py")
SIGKILL_STATUS = 137  # the board's shell reports a process ended by SIGKILL (9) as 128 + 9
REMOTE_RUNTIMES = {name: runtime.board_module for name, runtime in RUNTIMES.items() if runtime.board_module}


@dataclass(frozen=True)
class WorkerEnd:
    """How a worker run ended: its answer (a ``result`` or an ``error`` event), else why there is none."""

    answer: dict[str, Any] | None
    status: int | None  # the worker's exit status as the board's shell saw it; None: the connection ended first
    pid: int | None = None
    oom_kills: int | None = None  # /proc/vmstat's oom_kill count when it started
    stderr: str = ""


class Board:
    """One board for a session: its connection, its cache, what it has."""

    def __init__(self, address: BoardAddress, ssh_config: Path | None = None, python: str = "python3") -> None:
        self.address = address
        self.python = python
        self.connection = SshConnection(address, ssh_config)
        self.cache = BoardCache(self.connection)

    @property
    def name(self) -> str:
        return self.address.text

    @cached_property
    def report(self) -> dict[str, Any]:
        """What the board has (BoardUnreachable where it cannot be reached, RuntimeError where its Python fails)."""
        end = self.run_worker({"op": "probe", "modules": sorted(set(REMOTE_RUNTIMES.values()))}, timeout=120)
        if end.answer is None or end.answer.get("event") != "board":
            said = _last_line(end.stderr) or f"exit status {end.status}"
            raise RuntimeError(f"{self.python} on the board cannot run the worker: {said}")
        return end.answer

    def lacks(self, runtime: str) -> str | None:
        """Why the board cannot run a cell's runtime, None where it can."""
        module = REMOTE_RUNTIMES.get(runtime)
        if module is None:
            return f"{runtime} is not run on a remote board (accepted there: {', '.join(REMOTE_RUNTIMES)})"
        found = self.report["runtimes"].get(module, {})
        if "missing" in found:
            return f"the board's {self.python} (Python {self.report['python']}) has no {module} ({found['missing']})"
        return None

    def runtime_versions(self) -> str:
        """``onnxruntime 1.11.0 (CPUExecutionProvider); tensorrt 8.2.1.8; torch missing``: for the cell key."""
        parts = []
        for module in sorted(set(REMOTE_RUNTIMES.values())):
            found = self.report["runtimes"].get(module, {})
            version = found.get("version", "missing")
            providers = f" ({','.join(found['providers'])})" if found.get("providers") else ""
            parts.append(f"{module} {version}{providers}")
        return "; ".join(parts)

    def identity(self) -> str:
        """The board itself, for the cell key and the saved machine info: host name, model, L4T, Python."""
        report = self.report
        model = report.get("model") or f"{report.get('machine')} {report.get('cpu')}"
        l4t = f"; L4T {report['l4t']}" if report.get("l4t") else ""
        return f"{report.get('hostname')}: {model}{l4t}; Python {report.get('python')}"

    def worker_path(self) -> str:
        data = WORKER.read_bytes()
        return self.cache.place(data, f"worker-{hashlib.sha256(data).hexdigest()[:16]}.py")

    def run_worker(self, request: dict[str, Any], timeout: float) -> WorkerEnd:
        """Run the worker on ``request`` and read its JSON lines. BoardUnreachable where the connection fails
        or is lost before the worker's shell says how it ended."""
        remote = (f"{shlex.quote(self.python)} {shlex.quote(self.worker_path())}; "
                  "printf '{\"event\": \"exit\", \"status\": %d}\\n' $?")
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(self.connection.command(remote), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=errors)
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                process.kill()
            timer = threading.Timer(timeout, expire)
            timer.start()
            try:
                events = self._read(process, request)
            finally:  # Ctrl-C too: the ssh client goes, the worker's stdin ends, the worker exits
                timer.cancel()
                _stop(process)
            errors.seek(0)
            stderr = errors.read().decode(errors="replace")
        return self._end(events, process.returncode, stderr, timed_out=expired.is_set())

    @staticmethod
    def _read(process: subprocess.Popen, request: dict[str, Any]) -> list[dict[str, Any]]:
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write((json.dumps(request) + "\n").encode())
            process.stdin.flush()
        except BrokenPipeError:
            return []
        events = []
        for line in process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a runtime's own chatter on stdout
            events.append(event)
            if event.get("event") == "exit":
                break
        return events

    def _end(self, events: list[dict[str, Any]], returncode: int | None, stderr: str, timed_out: bool) -> WorkerEnd:
        by_kind = {event.get("event"): event for event in events}
        started, ended = by_kind.get("started", {}), by_kind.get("exit")
        answer = by_kind.get("result") or by_kind.get("error") or by_kind.get("board") or by_kind.get("oom")
        if ended is None and answer is None:
            self.connection.reset()
            why = "no answer within the cell's time limit" if timed_out else _last_line(stderr) or f"ssh exited with status {returncode}"
            raise BoardUnreachable(why)
        return WorkerEnd(answer, ended.get("status") if ended else None, started.get("pid"), started.get("oom_kills"), stderr)

    def killed_by_oom(self, end: WorkerEnd) -> str:
        """How the out-of-memory killer is known to have ended the worker; "" where it is not."""
        if end.pid is None:
            return ""
        check = self.run_worker({"op": "oom_check", "pid": end.pid, "oom_kills": end.oom_kills}, timeout=60)
        return check.answer.get("how", "") if check.answer and check.answer.get("killed") else ""

    def close(self) -> None:
        self.connection.close()


def _stop(process: subprocess.Popen) -> None:
    """Close the worker's stdin (it exits) and end the ssh client."""
    try:
        if process.stdin is not None:
            process.stdin.close()
    except OSError:
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

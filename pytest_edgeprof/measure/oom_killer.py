"""Whether the kernel's out-of-memory killer ended a process: evidence, never a guess from the signal.

A SIGKILL has many senders (a user's ``kill -9``, a CI job's timeout, a supervisor); only the
out-of-memory killer's makes a cell "out of memory". Two places say it was the killer:

- the memory cgroup counts every process its killer ends (``oom_kill N`` in cgroup v2's
  ``memory.events``, v1's ``memory.oom_control``); a spawned child is in its parent's cgroup, so a
  count that rose while the child lived is the evidence;
- the kernel's log (``/dev/kmsg``, read from where it ended when the child started) names the process:
  ``Out of memory: Killed process 1234 (python3)``. In a container the log's pids are the host's, so
  this answers only where the pids are the same.

Where neither says so (or neither can be read), the death is a failure naming the signal.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class OomWatch:
    """Opened just before a child starts, asked once it has died; ``close`` it after."""

    def __init__(self) -> None:
        self._kills = oom_kills()
        self._log = _open_kernel_log_at_end()

    def evidence(self, pid: int | None) -> str | None:
        """What says the out-of-memory killer ended ``pid`` since the watch began; None where nothing does."""
        after = oom_kills()
        if self._kills is not None and after is not None and after > self._kills:
            return f"the memory cgroup's oom_kill count rose from {self._kills} to {after}"
        if pid is not None and self._log is not None and _log_names(self._log, pid):
            return f"the kernel's log says it killed process {pid}"
        return None

    def close(self) -> None:
        if self._log is not None:
            os.close(self._log)
            self._log = None


def oom_kills() -> int | None:
    """The out-of-memory kills counted so far in this process's memory cgroup; None where no count is readable."""
    for path in _counter_files():
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def _counter_files() -> list[Path]:
    """The files that may hold this process's cgroup ``oom_kill`` count, v1 and v2 (also v2 mounted beside v1)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    files = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, group = parts
        relative = group.lstrip("/")
        if controllers == "":  # cgroup v2
            files += [CGROUP_ROOT / relative / "memory.events", CGROUP_ROOT / "unified" / relative / "memory.events"]
        elif "memory" in controllers.split(","):  # cgroup v1's memory controller
            files.append(CGROUP_ROOT / "memory" / relative / "memory.oom_control")
    return files


def _open_kernel_log_at_end() -> int | None:
    """``/dev/kmsg`` opened after its last record, so later reads give only what the kernel logs from now on."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        os.close(fd)
        return None
    return fd


def _log_names(fd: int, pid: int) -> bool:
    """Whether a record logged since the watch began says the killer ended ``pid``."""
    wanted = f"Killed process {pid} ("
    while True:
        try:
            record = os.read(fd, 8192)
        except BrokenPipeError:  # records were overwritten while reading: go on with the next
            continue
        except OSError:  # BlockingIOError: nothing more logged
            return False
        if not record:
            return False
        if wanted in record.decode(errors="replace"):
            return True

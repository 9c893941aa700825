"""A "board" on this machine for the remote tests and tools/check_remote.py: Debian's sshd on 127.0.0.1 at a
free port with generated keys, and a venv with only numpy and onnxruntime (no torch, no pytest, no edgeprof)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


class NoBoard(Exception):
    """sshd or the board's venv cannot be had here (the reason is the message)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, capture_output=True)


@dataclass
class Sshd:
    folder: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def device(self) -> str:
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}"

    @property
    def client_config(self) -> Path:
        return self.folder / "ssh_config"

    @property
    def board_cache(self) -> Path:
        return self.folder / "board-cache"

    def start(self) -> Sshd:
        self.process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                        stdout=subprocess.DEVNULL, stderr=open(self.folder / "sshd.log", "ab"),
                                        start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NoBoard(f"sshd exited at once: {(self.folder / 'sshd.log').read_text()[-300:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise NoBoard("sshd did not listen within 10 s")

    def kill(self) -> None:
        """sshd and every connection it serves, at once (each connection's sshd runs in a session of its own)."""
        if self.process is None or self.process.poll() is not None:
            return
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def start_sshd(folder: Path) -> Sshd:
    if not SSHD.is_file() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        raise NoBoard("openssh-server and openssh-client are not installed (/usr/sbin/sshd, ssh)")
    folder.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(exist_ok=True) if os.geteuid() == 0 else None
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    sshd = Sshd(folder, _free_port())
    (folder / "sshd_config").write_text(
        f"Port {sshd.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nStrictModes no\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\nPidFile {folder / 'sshd.pid'}\n"
        "AcceptEnv XDG_CACHE_HOME\nMaxSessions 50\nMaxStartups 50\n")
    sshd.client_config.write_text(
        f"Host *\n  IdentityFile {folder / 'client_key'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile {folder / 'known_hosts'}\n  LogLevel ERROR\n  SetEnv XDG_CACHE_HOME={sshd.board_cache}\n")
    return sshd.start()


def board_venv(folder: Path) -> Path:
    """A venv with only numpy and onnxruntime; its Python's path."""
    python = folder / "bin" / "python"
    if python.is_file():
        return python
    base = shutil.which("python3") or sys.executable
    made = subprocess.run([base, "-m", "venv", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        raise NoBoard(f"python3 -m venv failed: {made.stderr.strip()[-200:]}")
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "numpy", "onnxruntime"],
                               capture_output=True, text=True)
    if installed.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise NoBoard(f"pip install numpy onnxruntime failed: {installed.stderr.strip()[-200:]}")
    return python


def memory_limited_python(python: Path, limit_bytes: int, folder: Path) -> tuple[Path, Path]:
    """``python`` run inside a memory cgroup of ``limit_bytes`` (v1 or v2), so the kernel's out-of-memory killer ends
    it past the limit, as on a board that ran out of RAM: a wrapper script's path, and the cgroup's folder (rmdir it
    when its processes are gone). NoBoard where no memory cgroup can be made here (not root, cgroupfs read-only)."""
    name = f"edgeprof-board-{os.getpid()}-{_free_port()}"
    v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
    try:
        if (v1 / "memory.limit_in_bytes").exists():
            group, limit_file = v1 / name, "memory.limit_in_bytes"
        elif "memory" in (v2 / "cgroup.controllers").read_text().split():
            (v2 / "cgroup.subtree_control").write_text("+memory")
            group, limit_file = v2 / name, "memory.max"
        else:
            raise NoBoard("no memory cgroup controller")
        group.mkdir()
        (group / limit_file).write_text(str(limit_bytes))
    except OSError as exc:
        raise NoBoard(f"cannot make a memory cgroup: {exc}") from None
    wrapper = folder / "limited-python"
    wrapper.write_text(f'#!/bin/sh\necho $$ > "{group}/cgroup.procs" || exit 97\nexec "{python}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, group

"""The OpenSSH client to a board: one ControlMaster per session (as labgrid's SSH driver keeps one),
through which every command and copy runs.

Every call passes ``-F`` (``--ssh-config``) where given, ``BatchMode`` (never a password prompt), a
``ConnectTimeout`` (an unreachable board is one line, not a hang) and keep-alives (a board that
vanishes mid-cell is noticed in seconds). Copies go through ``ssh ... 'cat > tmp && mv tmp final'``,
so the board needs nothing but sshd and a POSIX shell.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from pytest_edgeprof.remote.address import BoardAddress

CONNECT_TIMEOUT_S = 10
KEEPALIVE = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")


class BoardUnreachable(Exception):
    """The board could not be reached or the connection was lost; the message is ssh's own line."""


class SshConnection:
    """One board's SSH connection: a control master opened on first use, reopened after a loss."""

    def __init__(self, address: BoardAddress, config: Path | None = None, connect_timeout: int = CONNECT_TIMEOUT_S) -> None:
        self.address = address
        self.config = config
        self.connect_timeout = connect_timeout
        self._folder: str | None = None  # holds the control socket (a short path: sockets are limited to ~100 bytes)
        self._open = False

    @property
    def control_path(self) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="edgeprof-ssh-")
        return str(Path(self._folder) / "cm")

    def _options(self) -> list[str]:
        options = ["-F", str(self.config)] if self.config is not None else []
        return [*options, "-p", str(self.address.port), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={self.connect_timeout}", *KEEPALIVE, "-o", f"ControlPath={self.control_path}"]

    def open(self) -> None:
        """Start the control master (``ssh -M -N -f``: it goes to the background once logged in)."""
        if self._open:
            return
        with tempfile.TemporaryFile() as errors:  # the master keeps stderr open: a pipe would never end
            done = subprocess.run(["ssh", *self._options(), "-o", "ControlMaster=yes", "-o", "ControlPersist=yes",
                                   "-N", "-f", self.address.destination],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                                  timeout=self.connect_timeout + 30, check=False)
            errors.seek(0)
            said = errors.read().decode(errors="replace")
        if done.returncode != 0:
            raise BoardUnreachable(_last_line(said) or f"ssh exited with status {done.returncode}")
        self._open = True

    def command(self, remote: str) -> list[str]:
        """The ssh command line that runs ``remote`` (a shell command line) on the board through the master."""
        self.open()
        return ["ssh", *self._options(), "-o", "ControlMaster=no", self.address.destination, remote]

    def run(self, remote: str, stdin: bytes | None = None, timeout: float = 120) -> str:
        """Run ``remote`` and return its stdout; BoardUnreachable on a lost connection, RuntimeError when the
        command itself failed (its last line of stderr)."""
        try:
            done = subprocess.run(self.command(remote), input=stdin, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            self.reset()
            raise BoardUnreachable(f"no answer within {timeout:g} s") from None
        said = done.stderr.decode(errors="replace")
        if done.returncode == 255:  # ssh's own failure: the connection, not the command
            self.reset()
            raise BoardUnreachable(_last_line(said) or "ssh exited with status 255")
        if done.returncode != 0:
            raise RuntimeError(_last_line(said) or f"{remote!r} exited with status {done.returncode}")
        return done.stdout.decode(errors="replace")

    def copy(self, data: bytes, destination: str) -> None:
        """Write ``data`` to ``destination`` on the board, whole or not at all (a temporary name, then mv)."""
        folder, temporary = shlex.quote(str(Path(destination).parent)), shlex.quote(f"{destination}.part")
        self.run(f"mkdir -p {folder} && cat > {temporary} && mv -f {temporary} {shlex.quote(destination)}", stdin=data)

    def reset(self) -> None:
        """Forget the master (after a loss): the next command opens a new connection."""
        if self._open and self._folder is not None:
            subprocess.run(["ssh", *self._options(), "-O", "exit", self.address.destination], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10, check=False)
        self._open = False

    def close(self) -> None:
        self.reset()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""

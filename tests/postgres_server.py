"""A real PostgreSQL server for the tests, started on 127.0.0.1 in a fresh data folder and stopped after.

Debian's PostgreSQL 15 (``/usr/lib/postgresql/15/bin``, or ``pg_config --bindir``). initdb and postgres
refuse to run as root, and the tests run as root here and in CI: there the server runs as the ``postgres``
system user (``runuser -u postgres --``) in a folder it owns. Skipped, with the reason, only where no
server binary or no such user can be had.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CANDIDATES = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin"), Path("/usr/lib/postgresql/17/bin"))


def _bindir() -> Path | None:
    for folder in CANDIDATES:
        if (folder / "postgres").is_file():
            return folder
    pg_config = shutil.which("pg_config")
    if pg_config:
        folder = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        return folder if (folder / "postgres").is_file() else None
    return None


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no postgres user to run the PostgreSQL server as")
    if shutil.which("runuser") is None:
        pytest.skip("running as root and runuser is missing to run the PostgreSQL server as postgres")
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postgresql_url() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT/postgres`` of a server started for this module."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (Debian: apt-get install postgresql)")
    prefix = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="edgeprof-pg-"))  # under /tmp, which the postgres user can reach
    data = folder / "data"
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen([*prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                               "-k", str(folder), "-c", "fsync=off", "-c", "max_connections=50"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ready(bindir, port, server)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()  # SIGTERM to runuser, which passes it on: the server's smart shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(bindir: Path, port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited: {server.stderr.read().decode() if server.stderr else ''}")
        ready = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("PostgreSQL did not accept connections within 30 s")

"""Where a remote board is: ``ssh://[user@]host[:port]`` as ``--device`` takes it, parsed into a
``BoardAddress``; labgrid's place (``remote/labgrid_place.py``) resolves to one too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pytest_edgeprof.errors import UsageError

SCHEME = "ssh://"
ACCEPTED = "ssh://[user@]host[:port], e.g. ssh://nvidia@jetson-nano.local or ssh://192.168.1.20:2222"
_ADDRESS = re.compile(r"(?:(?P<user>[^@/:\s]+)@)?(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[^@/:\[\]\s]+))(?::(?P<port>[0-9]+))?")


@dataclass(frozen=True)
class BoardAddress:
    """A board reached over SSH: its host, port and login (None: the SSH config's or the local user)."""

    host: str
    port: int = 22
    user: str | None = None

    @property
    def destination(self) -> str:
        """What ``ssh`` takes as its destination: ``user@host``, or ``host``."""
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def text(self) -> str:
        """``ssh://user@host:port``, as ``--device`` takes it (the port only where it is not 22)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port != 22 else ""
        return f"{SCHEME}{self.user + '@' if self.user else ''}{host}{port}"


def is_ssh_device(text: str | None) -> bool:
    return bool(text) and str(text).strip().lower().startswith(SCHEME)


def parse_board_address(text: str) -> BoardAddress:
    """``ssh://[user@]host[:port]`` as a BoardAddress; UsageError naming what is accepted otherwise."""
    spec = text.strip()
    match = _ADDRESS.fullmatch(spec[len(SCHEME):]) if spec.lower().startswith(SCHEME) else None
    port = int(match["port"]) if match and match["port"] else 22
    if match is None or not 1 <= port <= 65535:
        raise UsageError(f"--device {text!r}: not a board address; accepted: {ACCEPTED} (port 1 to 65535)")
    return BoardAddress(match["ipv6"] or match["host"], port, match["user"])


def parse_ssh_config(text: str) -> Path:
    """``--ssh-config FILE``: an OpenSSH client config that exists and can be read."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"ssh config {text!r} is not a file; accepted: an OpenSSH client config (ssh -F FILE)")
    try:
        path.read_bytes()
    except OSError as exc:
        raise UsageError(f"ssh config {text!r} cannot be read ({exc.strerror})") from None
    return path.resolve()


def parse_board_python(text: str) -> str:
    """``--board-python PATH``: the board's Python, a command its shell finds or a path."""
    if not re.fullmatch(r"[\w./~+-]+", text):
        raise UsageError(f"bad --board-python {text!r}: expected the board's Python as a command or a path, e.g. python3 "
                         "or /usr/bin/python3.6 (letters, digits and . / ~ _ + -)")
    return text

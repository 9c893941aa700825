"""labgrid's coordinator through labgrid's own command, ``labgrid-client``, one short process per request.

Why the command and not labgrid's Python ``ClientSession``: the command line is labgrid's documented,
versioned interface (``ClientSession`` is internal: its methods read an argparse namespace, and it was
rewritten when the coordinator moved to gRPC in labgrid 24); no gRPC channel, keep-alive thread or asyncio
loop lives in the process that times the cells (``start_session`` also stashes an event loop in the
caller's thread); every request has a hard timeout, so an unreachable or stuck coordinator can never hang a
run; a Ctrl-C ends the request in flight with the rest of the process group, and a fresh process then gives
the place back. A request costs about 0.35 s, and a session makes a handful. What is read back is
structured: ``env`` is the YAML of labgrid's environment files, ``reserve --shell`` is made for a shell to
read, and ``places -v`` prints one ``key: value`` line per field of each place.

It is run as ``python -m labgrid.remote.client`` with this interpreter, so it is the labgrid installed
beside the plugin, whatever ``PATH`` holds. Nothing here imports labgrid.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from pytest_edgeprof.errors import UsageError

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default (labgrid.remote.client, LG_COORDINATOR unset)
REQUEST_TIMEOUT_S = 20.0  # a coordinator on a LAN answers in well under a second
_UNREACHABLE = "Could not connect to coordinator"
_PLACE = re.compile(r"^Place '(?P<name>[^']+)':$")
_FIELD = re.compile(r"^  (?P<key>[a-z ]+): ?(?P<value>.*)$")


class ClientError(Exception):
    """labgrid-client refused a request: ``line`` is its own one-line message."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


@dataclass(frozen=True)
class PlaceState:
    """A place as the coordinator holds it: its tags, who acquired it (``host/user``) and which reservation
    it is allocated to, if any."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    acquired: str | None = None
    reservation: str | None = None
    changed: str = ""


def resolve_coordinator(given: str | None) -> str:
    """The coordinator's HOST:PORT: the one given (``--lg-coordinator``), else ``LG_COORDINATOR``, else labgrid's
    default."""
    return given or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def client_identity() -> str:
    """``host/user`` as labgrid names this client (``LG_HOSTNAME`` and ``LG_USERNAME`` win, as in labgrid)."""
    return f"{os.environ.get('LG_HOSTNAME', socket.gethostname())}/{os.environ.get('LG_USERNAME', getpass.getuser())}"


class LabgridClient:
    """Requests to one coordinator, each a ``labgrid-client`` process with a timeout."""

    def __init__(self, coordinator: str) -> None:
        self.coordinator = coordinator

    def run(self, *args: str, timeout: float = REQUEST_TIMEOUT_S) -> str:
        """The request's standard output; ``ClientError`` with labgrid's line where it refused; ``UsageError``
        where the coordinator cannot be reached or does not answer in time."""
        command = [sys.executable, "-m", "labgrid.remote.client", "-x", self.coordinator, *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise UsageError(f"labgrid coordinator {self.coordinator} did not answer within {timeout:g} s "
                             f"(labgrid-client {' '.join(args)})") from None
        if done.returncode == 0:
            return done.stdout
        if _UNREACHABLE in done.stderr:
            raise UsageError(f"labgrid coordinator {self.coordinator} cannot be reached ({_reason(done.stderr)}); "
                             "give its HOST:PORT with --lg-coordinator or LG_COORDINATOR")
        raise ClientError(_error_line(done.stderr) or f"labgrid-client {' '.join(args)} exited {done.returncode}")

    def places(self) -> dict[str, PlaceState]:
        return parse_places(self.run("-v", "places"))

    def reserve(self, filters: dict[str, str]) -> str:
        """A reservation for any place with these tags (``name`` is the place's name); its token."""
        out = self.run("reserve", "--shell", *(f"{key}={value}" for key, value in filters.items()))
        match = re.search(r"LG_TOKEN=(\S+)", out)
        if not match:
            raise ClientError(f"labgrid-client reserve gave no token: {out.strip()[:200]!r}")
        return match[1]

    def wait_for(self, token: str, seconds: float) -> None:
        """Until the reservation is no longer waiting (a place allocated to it), at most ``seconds``."""
        try:
            self.run("wait", token, timeout=seconds)
        except UsageError:  # the time is up (the coordinator answered the reservation, so it is reachable)
            pass

    def acquire_reserved(self, token: str) -> str:
        """Acquire the place allocated to the reservation; its name. ``ClientError`` where none is allocated."""
        out = self.run("-p", f"+{token}", "acquire")
        match = re.search(r"acquired place (\S+)", out)
        if not match:
            raise ClientError(f"labgrid-client acquire said {out.strip()[:200]!r}")
        return match[1]

    def resources(self, place: str) -> list[dict[str, Any]]:
        """The acquired place's resources, as labgrid's environment config lists them: ``{cls: {arg: value}}``."""
        import yaml  # labgrid's own dependency: present wherever labgrid is

        env = yaml.safe_load(self.run("-p", place, "env")) or {}
        return list(env.get("targets", {}).get(place, {}).get("resources", []))

    def release_reserved(self, token: str) -> None:
        """Release the place acquired through the reservation, if any; then cancel the reservation."""
        try:
            self.run("-p", f"+{token}", "release")
        except ClientError as exc:
            if "matches nothing" not in exc.line and "is not acquired" not in exc.line:
                raise
        self.run("cancel-reservation", token)


def parse_places(text: str) -> dict[str, PlaceState]:
    """``labgrid-client -v places``: a ``Place 'NAME':`` line, then its fields indented by two spaces."""
    fields: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if match := _PLACE.match(line):
            current = fields.setdefault(match["name"], {})
        elif current is not None and (match := _FIELD.match(line)):
            current[match["key"]] = match["value"].strip()
    return {name: _place_state(name, values) for name, values in fields.items()}


def _place_state(name: str, values: dict[str, str]) -> PlaceState:
    tags = dict(pair.split("=", 1) for pair in values.get("tags", "").split(", ") if "=" in pair)
    aliases = tuple(alias for alias in values.get("aliases", "").split(", ") if alias)
    acquired = values.get("acquired")
    return PlaceState(name, tags, aliases, None if acquired in (None, "", "None") else acquired,
                      values.get("reservation") or None, values.get("changed", ""))


def _error_line(stderr: str) -> str:
    """labgrid-client's own error line (``labgrid-client: Error: ...``), without its prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("labgrid-client:", "Server error:")):
            return line.split(":", 1)[1].strip().removeprefix("Error: ")
    return lines[-1] if lines else ""


def _reason(stderr: str) -> str:
    """Why the coordinator could not be reached, from gRPC's line: its last part (``Connection refused``)."""
    for line in stderr.splitlines():
        if "coordinator is unavailable" in line or "coordinator became unavailable" in line:
            return line.rsplit(":", 1)[-1].strip() or "unavailable"
    return "no answer"

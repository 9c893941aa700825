"""Shared boards through labgrid: ``--device labgrid:PLACE`` or ``labgrid:TAG=VALUE[,TAG=VALUE]``.

A board farm's coordinator knows the places (a board and its resources) and who holds each. For the run's
session ``hold_place`` takes a place through a labgrid reservation (a place by name is a reservation for the
tag ``name=PLACE``, labgrid's own rule; by tags any free place that has them all), acquires it, reads its
``NetworkService`` resource (the board's address, SSH port and user) and gives it back at the end, after an
exception or a Ctrl-C too. A place held by someone else is waited for up to ``--board-wait`` seconds, then
named in one line with its holder and the command that frees it.

labgrid stays optional: nothing here imports it, and the requests go through ``labgrid-client``
(``labgrid_client.py`` says why).
"""

from __future__ import annotations

import importlib.util
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_edgeprof.errors import EdgeprofWarning, UsageError, first_line
from pytest_edgeprof.remote.labgrid_client import (
    ClientError,
    LabgridClient,
    PlaceState,
    client_identity,
    resolve_coordinator,
)

if TYPE_CHECKING:
    import pytest

PREFIX = "labgrid:"
ACCEPTED = ("labgrid:PLACE or labgrid:TAG=VALUE[,TAG=VALUE] (a tag: a lower-case letter, then lower-case letters, "
            "digits or _; a value or a place: no spaces, commas or =)")
INSTALL = "pip install 'pytest-edgeprof[labgrid]'"
MAX_WAIT_S = 7 * 24 * 3600.0
_TAG = re.compile(r"[a-z][a-z0-9_]+")  # labgrid's TAG_KEY (labgrid.remote.common)
_VALUE = re.compile(r"[^\s,=]+")
_NAME = re.compile(r"[^\s,=+][^\s,=]*")  # a leading + is labgrid-client's reservation-token pattern
_SECONDS = re.compile(r"(?P<seconds>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*s?")


class LabgridWarning(EdgeprofWarning):
    """A place that could not be given back at the end of the run (it stays acquired: the line says how to
    release it)."""


@dataclass(frozen=True)
class PlaceSpec:
    """A place by name, or any place with these tags."""

    name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def filters(self) -> dict[str, str]:
        """The reservation's filter: labgrid matches a place's name as the tag ``name``."""
        return {"name": self.name} if self.name else dict(self.tags)

    def __str__(self) -> str:
        return PREFIX + (self.name or ",".join(f"{key}={value}" for key, value in self.tags))


@dataclass(frozen=True)
class PlaceAddress:
    """The held place's board as its ``NetworkService`` gives it: ``host``, ``port`` and ``user`` as the SSH
    path's ``BoardAddress`` takes them (``user`` None: ssh's own default)."""

    place: str
    host: str
    port: int = 22
    user: str | None = None
    coordinator: str = ""


def is_labgrid_device(text: str) -> bool:
    return text.startswith(PREFIX)


def parse_place_spec(text: str) -> PlaceSpec:
    """``labgrid:PLACE`` or ``labgrid:TAG=VALUE[,TAG=VALUE]``; anything else is one UsageError."""
    body = text[len(PREFIX):] if text.startswith(PREFIX) else None
    if body is not None and "=" not in body and _NAME.fullmatch(body):
        return PlaceSpec(name=body)
    tags = [pair.split("=", 1) for pair in body.split(",")] if body else []
    if tags and all(len(tag) == 2 and _TAG.fullmatch(tag[0]) and _VALUE.fullmatch(tag[1]) for tag in tags):
        keys = [key for key, _ in tags]
        if len(set(keys)) == len(keys):
            return PlaceSpec(tags=tuple((key, value) for key, value in tags))
    raise UsageError(f"bad labgrid place {text!r}: expected {ACCEPTED}")


def parse_board_wait(text: str) -> float:
    """``--board-wait``: seconds, 0 or more (``30``, ``2.5s``)."""
    match = _SECONDS.fullmatch(text.strip())
    if not match or float(match["seconds"]) > MAX_WAIT_S:
        raise UsageError(f"bad --board-wait {text!r}: expected seconds, 0 or more and at most a week (0, 30, 2.5s)")
    return float(match["seconds"])


def lg_coordinator_option(config: pytest.Config) -> str | None:
    """labgrid's own ``--lg-coordinator`` (its pytest plugin declares it; None where that plugin is not loaded)."""
    return config.getoption("lg_coordinator", None) or None


def require_labgrid() -> None:
    """One line where labgrid is not installed beside the plugin."""
    try:
        found = importlib.util.find_spec("labgrid") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UsageError(f"--device labgrid:... needs labgrid, which is not installed: {INSTALL}")


@contextmanager
def hold_place(spec: PlaceSpec | str, coordinator: str | None = None, wait_s: float = 0.0) -> Iterator[PlaceAddress]:
    """The place held for the ``with`` block: its board's address. ``coordinator``: HOST:PORT, else
    ``LG_COORDINATOR``, else labgrid's default. A place another holds is waited for up to ``wait_s`` seconds,
    then a UsageError names its holder and how to free it."""
    spec = parse_place_spec(spec) if isinstance(spec, str) else spec
    require_labgrid()
    client = LabgridClient(resolve_coordinator(coordinator))
    candidates = _candidates(spec, client.places(), client.coordinator)
    token = client.reserve(spec.filters)
    try:
        place = _acquire(client, token, wait_s)
        if place is None:
            raise UsageError(_held_line(spec, candidates, client.places(), wait_s))
        yield _address(client, place)
    finally:
        _give_back(client, token, spec)


def _candidates(spec: PlaceSpec, places: dict[str, PlaceState], coordinator: str) -> list[str]:
    """The places the spec can take; a UsageError where there is none at all (held or free)."""
    if spec.name:
        if spec.name in places:
            return [spec.name]
        names = ", ".join(sorted(places)) or "none"
        raise UsageError(f"{spec}: no place {spec.name!r} on the labgrid coordinator {coordinator} (its places: {names})")
    wanted = set(spec.tags)
    found = [name for name, place in sorted(places.items()) if wanted <= set(place.tags.items())]
    if not found:
        tagged = "; ".join(f"{name} {_tags(place)}" for name, place in sorted(places.items())) or "none"
        raise UsageError(f"{spec}: no place on the labgrid coordinator {coordinator} has these tags (its places: {tagged})")
    return found


def _acquire(client: LabgridClient, token: str, wait_s: float) -> str | None:
    """The place acquired through the reservation, or None where none was allocated to it within ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return client.acquire_reserved(token)
        except ClientError as exc:
            if "matches nothing" not in exc.line:  # anything but "nothing allocated yet" is labgrid's own refusal
                raise UsageError(f"labgrid refused the place: {exc.line}") from None
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        client.wait_for(token, left)


def _address(client: LabgridClient, place: str) -> PlaceAddress:
    services = [args or {} for resource in client.resources(place) for cls, args in resource.items()
                if cls == "NetworkService"]
    if not services or not services[0].get("address"):
        raise UsageError(f"labgrid place {place} has no NetworkService resource (the board's address, port and "
                         f"username): add one to its exporter and `labgrid-client -p {place} add-match "
                         "EXPORTER/GROUP/NetworkService`")
    service = services[0]
    return PlaceAddress(place, str(service["address"]), int(service.get("port") or 22),
                        service.get("username") or None, client.coordinator)


def _held_line(spec: PlaceSpec, candidates: list[str], places: dict[str, PlaceState], wait_s: float) -> str:
    """Who holds the places the spec could take, and the labgrid-client command that frees each."""
    me = client_identity()
    holders = [_holder(places[name], me) for name in candidates if name in places]
    waited = f"after waiting {wait_s:g} s" if wait_s else "(--board-wait 0)"
    what = "the place is held" if spec.name else "no place with these tags is free"
    return f"{spec}: {what} {waited}: {'; '.join(holders)}; or wait with --board-wait SECONDS"


def _holder(place: PlaceState, me: str) -> str:
    since = f" since {place.changed[:19]}" if place.changed else ""
    if place.acquired:
        host, _, user = place.acquired.partition("/")
        who = f"your user ({user} on {host}: another run, or one killed before it gave the place back)" \
            if place.acquired == me else f"{user} on {host}"
        return (f"{place.name} acquired by {who}{since}, freed by `labgrid-client -p {place.name} release` "
                f"as {user} (or, if that run is gone, `labgrid-client -p {place.name} release --kick`)")
    if place.reservation:
        return (f"{place.name} reserved for reservation {place.reservation}, freed by "
                f"`labgrid-client cancel-reservation {place.reservation}`")
    return f"{place.name} was taken by an earlier reservation"


def _give_back(client: LabgridClient, token: str, spec: PlaceSpec) -> None:
    """Release the place and cancel the reservation; a failure is a warning (the run's own error goes on)."""
    try:
        client.release_reserved(token)
    except (ClientError, UsageError) as exc:
        warnings.warn(LabgridWarning(
            f"{spec}: the place was not given back ({first_line(exc)}); release it with "
            f"`labgrid-client -p +{token} release` and `labgrid-client cancel-reservation {token}`"), stacklevel=3)


def _tags(place: PlaceState) -> str:
    return "[" + ",".join(f"{key}={value}" for key, value in sorted(place.tags.items())) + "]"

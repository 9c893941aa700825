"""A results store's URL, checked without importing SQLAlchemy (the plugin reads its options in every run).

Accepted: ``sqlite:///PATH`` (a file, relative to the working folder; ``sqlite:////abs/path`` for an
absolute one) and ``postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE`` (``postgresql+psycopg://``
too: psycopg 3 is the driver either way). Anything else is a UsageError naming what is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pytest_edgeprof.errors import UsageError

ACCEPTED = "sqlite:///PATH (a file) or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
EXTRA_HINT = "pip install 'pytest-edgeprof[store]' (SQLite) or 'pytest-edgeprof[postgresql]' (PostgreSQL)"
ENV_VAR = "EDGEPROF_STORE"  # the edgeprof command's store where --store is not given

_POSTGRES = re.compile(r"postgresql(\+psycopg)?://(?P<rest>.*)", re.S)
_POSTGRES_REST = re.compile(r"(?:(?P<auth>[^@/]*)@)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/?#@]*)(?::(?P<port>[^/?#]*))?"
                            r"/(?P<database>[^/?#]+)(?P<query>\?[^#]*)?")


@dataclass(frozen=True)
class StoreUrl:
    """A checked store URL: what the user wrote, what SQLAlchemy is given, and the path of a SQLite file."""

    text: str
    sqlalchemy: str  # postgresql:// mapped to postgresql+psycopg://
    dialect: str  # "sqlite" or "postgresql"
    path: Path | None = None  # the SQLite file

    @property
    def shown(self) -> str:
        """The URL with any password hidden, for messages."""
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", self.text)


def _bad(text: str, why: str) -> UsageError:
    shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", text)
    return UsageError(f"bad store URL {shown!r}: {why}; accepted: {ACCEPTED}")


def parse_store_url(text: str) -> StoreUrl:
    """``sqlite:///runs.db`` or ``postgresql://user@host/db`` as a StoreUrl; UsageError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "empty")
    text = text.strip()
    if text.startswith("sqlite://"):
        return _sqlite(text)
    match = _POSTGRES.fullmatch(text)
    if match is not None:
        return _postgresql(text, match["rest"])
    scheme = text.split("://", 1)[0] if "://" in text else ""
    why = f"unknown scheme {scheme!r}" if scheme else "no scheme"
    raise _bad(text, why)


def _sqlite(text: str) -> StoreUrl:
    rest = text[len("sqlite://"):]
    if not rest.startswith("/") or rest in ("/", "//"):
        raise _bad(text, "a SQLite URL names a file after three slashes (an in-memory database keeps nothing)")
    path = Path(rest[1:])
    if "?" in rest or "\x00" in rest:
        raise _bad(text, "a SQLite URL takes a file path only, no query or NUL")
    if path.is_dir():
        raise _bad(text, f"{path} is a folder; give a file path")
    return StoreUrl(text, f"sqlite:///{path}", "sqlite", path)


def _postgresql(text: str, rest: str) -> StoreUrl:
    match = _POSTGRES_REST.fullmatch(rest)
    if match is None or "\x00" in rest or any(c.isspace() for c in rest):
        raise _bad(text, "expected HOST[:PORT]/DATABASE after postgresql://")
    port = match["port"]
    if port is not None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise _bad(text, f"port {port!r} is not a number from 1 to 65535")
    return StoreUrl(text, "postgresql+psycopg://" + rest, "postgresql")


MAX_MACHINE = 200


def parse_machine_name(text: str) -> str:
    """``--edgeprof-machine NAME``: any printable text up to 200 characters."""
    name = text.strip() if isinstance(text, str) else ""
    if not name or len(name) > MAX_MACHINE or not name.isprintable():
        raise UsageError(f"bad machine name {text!r}: expected printable text of 1 to {MAX_MACHINE} characters, e.g. jetson-orin-lab-2")
    return name

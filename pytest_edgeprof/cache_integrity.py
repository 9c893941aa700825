"""Cache files edgeprof can trust: each written with a keyed digest beside it, read back only if it matches.

Every cache edgeprof keeps (deployed models, pruned variants, device peaks, and the remote boards'
artifacts and engines to come) lives in a folder that is easy to share or restore: a CI cache, a
tarball of someone's ``~/.cache``. Some of those files are read by loaders that can run code
(``torch.export.load`` unpickles a ``.pt2`` archive's weights without ``weights_only``); all of them
can be cut short by a full disk or a copy that stopped. So no cache file is read unless it is, byte
for byte and under its own name, a file this user's edgeprof wrote.

Why a keyed digest and not a plain one: a manifest of sha256 digests kept in the cache folder can be
rewritten by whoever can write the files it lists, so it proves nothing against a crafted cache.
The digest here is an HMAC-SHA256 keyed by a per-user secret kept outside every cache folder
(``$XDG_CONFIG_HOME/pytest-edgeprof/cache-key``, else ``~/.config/...``, mode 0600, made on first
use). Whoever can write the cache but not read that key cannot make a file that verifies. A safe
loader alone (``torch.load(weights_only=True)``) would not do: ``torch.export.load`` has none, and
a safe loader still reads a truncated or foreign file as the model. A cache shared between machines
is rebuilt on each (its files verify only under the key that wrote them); copy the key along with
the cache only between machines you trust.

Each file ``name`` has its record ``name.hmac`` beside it: the digest of its name and bytes, and its
size. The record is written before the file, so a file that appears is already vouched for; a file
is read into memory, checked there and handed over as bytes, so nothing can swap it between the
check and the load. A file that fails is named in a :class:`CacheWarning`, deleted with its record,
and the caller rebuilds it.

This module imports no torch: it knows files, not models.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import warnings
from pathlib import Path

from pytest_edgeprof.errors import EdgeprofWarning, UsageError
from pytest_edgeprof.paths import output_folder

RECORD_SUFFIX = ".hmac"
KEY_HEX_CHARS = 64  # a 256-bit key, written as hex


class CacheWarning(EdgeprofWarning):
    """A cache file that did not verify or could not be read: named, discarded, and rebuilt."""


def key_path() -> Path:
    """Where the per-user cache key lives: outside every cache folder, with the user's configuration."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "pytest-edgeprof" / "cache-key"


def cache_key() -> bytes:
    """The per-user secret that signs cache files, made on first use; one UsageError line where it
    cannot be made or read, or where another user could read or change it."""
    path = key_path()
    if not path.exists():
        try:
            _make_key(path)
        except OSError as exc:
            raise UsageError(f"cannot make the cache key {path}: {exc.strerror or exc}; set XDG_CONFIG_HOME to a "
                             "folder this user can write in") from None
    try:
        return _read_key(path)
    except OSError as exc:
        raise UsageError(f"cannot read the cache key {path}: {exc.strerror or exc}") from None


def _make_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, scratch = tempfile.mkstemp(prefix=".cache-key-", dir=path.parent)  # mode 0600
    try:
        os.write(handle, secrets.token_hex(KEY_HEX_CHARS // 2).encode())
        os.fsync(handle)
        os.close(handle)
        try:
            os.link(scratch, path)  # atomic, and never replaces a key another run made a moment before
        except FileExistsError:
            pass
    finally:
        os.unlink(scratch)


def _read_key(path: Path) -> bytes:
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        text = file.read(KEY_HEX_CHARS + 1).decode("ascii", "replace").strip()
    _check_private(path, info)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) * 2 != KEY_HEX_CHARS:
        raise UsageError(f"the cache key {path} is not a key edgeprof made; remove it (edgeprof makes a new one)")
    return key


def _check_private(path: Path, info: os.stat_result) -> None:
    """The key is this user's, and no one else's to read (POSIX owners and modes; Windows has neither)."""
    if not hasattr(os, "getuid"):
        return
    if info.st_uid != os.getuid():
        raise UsageError(f"the cache key {path} belongs to another user (uid {info.st_uid}); set XDG_CONFIG_HOME to "
                         "a folder of this user's")
    if info.st_mode & 0o077:
        raise UsageError(f"the cache key {path} can be read by others (mode {info.st_mode & 0o777:o}); remove it "
                         "(edgeprof makes a new one, and rebuilds its caches) or chmod 600 it")


def check_cache_folder(folder: Path, what: str, hint: str = "") -> Path:
    """Before any work: ``folder`` can hold a cache (it may not exist yet) and the key is at hand; else
    one UsageError line naming ``what`` ("the deployed-model cache") and, after it, ``hint`` (how to
    choose another folder)."""
    try:
        output_folder(str(folder), what, what.removeprefix("the "))
    except UsageError as exc:
        raise UsageError(f"{exc}{f' ({hint})' if hint else ''}") from None
    cache_key()
    return folder


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def _digest(key: bytes, name: str, data: bytes) -> str:
    """The file's keyed digest, bound to its name: a file another edgeprof made for another name fails."""
    return hmac.new(key, name.encode() + b"\0" + data, hashlib.sha256).hexdigest()


def write_whole(path: Path, data: bytes) -> None:
    """``data`` as ``path``, atomically: a reader sees the whole file or none (no digest: not a cache file)."""
    handle, scratch = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(scratch, path)  # readers see the whole file or none
    finally:
        Path(scratch).unlink(missing_ok=True)


def _write_record(path: Path, data: bytes) -> None:
    record = {"hmac_sha256": _digest(cache_key(), path.name, data), "bytes": len(data)}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(_record_path(path), json.dumps(record).encode())


def write_verified(path: Path, data: bytes) -> None:
    """``data`` as the cache file ``path``, whole or not at all, its keyed digest recorded first.
    An OSError (a full disk, a folder that cannot be written) is the caller's to word."""
    _write_record(path, data)
    write_whole(path, data)


def commit(made: Path, path: Path) -> bytes:
    """Move ``made``, a finished file in a scratch folder only this user can enter (``tempfile.mkdtemp``),
    to the cache file ``path``, its keyed digest recorded first; its bytes, as written."""
    data = made.read_bytes()
    _write_record(path, data)
    os.replace(made, path)
    return data


def read_verified(path: Path, what: str, warning: type[CacheWarning] = CacheWarning) -> bytes | None:
    """The bytes of the cache file ``path`` when they are what edgeprof wrote under that name; None when
    there is no such file, or when it fails: then it is named in a ``warning`` (``what`` says which
    cache it belongs to) and deleted, and the caller rebuilds it."""
    if not path.is_file():
        return None
    key = cache_key()
    try:
        data = path.read_bytes()
        problem = _problem(path, data, key)
    except OSError as exc:
        data, problem = b"", f"cannot read it: {exc.strerror or exc}"
    if problem:
        discard(path, what, problem, warning)
        return None
    return data


def _problem(path: Path, data: bytes, key: bytes) -> str:
    """What is wrong with ``data`` as the file ``path``; "" when it is the file edgeprof wrote."""
    try:
        record = json.loads(_record_path(path).read_bytes())
        written, digest = int(record["bytes"]), str(record["hmac_sha256"])
    except FileNotFoundError:
        return "no digest was recorded for it: written before edgeprof recorded them, or not by edgeprof"
    except (OSError, ValueError, KeyError, TypeError):
        return f"its digest record {_record_path(path).name} is unreadable"
    if len(data) != written:
        return f"it holds {len(data)} bytes, {written} were written: cut short or altered"
    if not hmac.compare_digest(_digest(key, path.name, data), digest):
        return "its bytes are not what edgeprof wrote: altered, or written under another machine's or user's key"
    return ""


def discard(path: Path, what: str, problem: str, warning: type[CacheWarning] = CacheWarning) -> None:
    """Name the cache file ``path`` and what is wrong with it in a ``warning``, then delete it and its record."""
    warnings.warn(warning(f"{what} {path} is unreadable ({problem}); discarded, rebuilding it"), stacklevel=3)
    for stale in (path, _record_path(path)):
        try:
            stale.unlink(missing_ok=True)
        except OSError:  # a folder that cannot be written: the rebuild's write says so
            pass

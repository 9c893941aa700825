"""Places the user asks edgeprof to write to, checked before any work starts.

A journal, a variant cache, a report folder or a plot that cannot be written is otherwise found out
only when the first result is written, after the work that produced it. Here the path is checked
up front: the nearest part of it that exists must be a folder this process may write in, and the
path itself, where it exists, must be the right kind (a folder for a folder, a file for a file).
Nothing is created here; the writers create what is missing, with the user's permissions.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytest_edgeprof.errors import UsageError


def output_folder(text: str, option: str, what: str) -> Path:
    """A folder to write in (``what`` says what for); it may not exist yet."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {text}: not a folder; give a folder for {what}")
    _check_writable_below(path, text, option)
    return path


def output_file(text: str, option: str, example: str) -> Path:
    """A file to write; it may not exist yet, nor the folders above it."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise UsageError(f"{option} {text}: is a folder; give a file path such as {example}")
    _check_writable_below(path.parent, text, option)
    return path


def _check_writable_below(path: Path, text: str, option: str) -> None:
    """``path`` can be created (or is) a folder this process writes in."""
    existing = next(p for p in (path, *path.parents) if p.exists() or p == Path(p.anchor or "."))
    if not existing.is_dir():
        raise UsageError(f"{option} {text}: {existing} is a file, so nothing can be written below it; give another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {text}: {existing} is not writable by this user; give another path")


def default_cache_dir() -> Path:
    """Where pruned variants are cached: $XDG_CACHE_HOME/pytest-edgeprof/variants, else ~/.cache/pytest-edgeprof/variants."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "pytest-edgeprof" / "variants"

"""The one exception type for bad user input, the one for a deployment a model cannot take, and the base of
edgeprof's warnings.

Anything a user typed or pointed us at that we cannot use raises ``UsageError`` with one line that
names the bad value and what is accepted. The plugin turns it into pytest's usage-error exit code (4),
the CLI into exit code 2; neither shows a traceback.
"""

import re


class UsageError(ValueError):
    """Bad user input: an option, ini value, marker argument, file or CLI argument."""


class EdgeprofWarning(UserWarning):
    """The base of every warning edgeprof gives: ``-W ignore::pytest_edgeprof.errors.EdgeprofWarning`` silences
    them all (and, being a UserWarning, ``-W ignore::UserWarning`` still does)."""


class DeployUnsupported(Exception):
    """A precision or runtime cannot handle this model (its exporter, quantizer or runtime fails): the
    cell is skipped with the reason, the rest of the grid runs."""


_TERMINAL_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # torch.onnx colours its messages for a terminal


def first_line(error: BaseException, *, with_type: bool = False, limit: int | None = None) -> str:
    """An exception in one line for a message: its text's first line (or its type's name when it has
    no text), ``Type: text`` with ``with_type``, cut to ``limit`` characters when given."""
    text = _TERMINAL_COLOURS.sub("", str(error)).strip()
    line = text.splitlines()[0] if text else ""
    if with_type:
        line = f"{type(error).__name__}: {line}" if line else type(error).__name__
    line = line or type(error).__name__
    return line[:limit] if limit else line


"""How a cell ended, and the one place that recognises running out of memory.

Running out of memory is a result, not a crash: the allocator raises (``torch.OutOfMemoryError``,
the CPU allocator's ``RuntimeError``, Python's ``MemoryError``), or, on a small board, the kernel's
out-of-memory killer ends the process, which ``--isolate`` sees as a child killed by SIGKILL and
calls out of memory only where the kernel says it was its killer (``measure/oom_killer.py``).
"""

from __future__ import annotations

import enum
import re
import sys

from pytest_edgeprof.metrics import format_bytes


class Outcome(str, enum.Enum):
    """A cell's ``outcome`` as saved in ``extra_info`` (the value is the saved text)."""

    PASSED = "passed"
    OVER_BUDGET = "over-budget"
    OUT_OF_MEMORY = "out-of-memory"
    FAILED = "failed"  # the error says why; an isolated child's death included
    SKIPPED = "skipped"  # not run: a smaller batch of the same configuration ran out of memory

    def __str__(self) -> str:
        return self.value

    @property
    def words(self) -> str:
        """``out of memory``: the outcome in a sentence."""
        return self.value.replace("-", " ")

    @classmethod
    def read(cls, value: object) -> Outcome:
        """A saved outcome; a run saved before the key existed counts its cells as passed, and a word
        this version does not know counts as failed (it is not a pass)."""
        if value is None:
            return cls.PASSED
        try:
            return cls(value)
        except ValueError:
            return cls.FAILED


# How an isolated child's death is recorded where the kernel says its out-of-memory killer sent the SIGKILL.
OOM_KILLED = "killed by the out-of-memory killer"
_OOM_MESSAGES = ("out of memory", "DefaultCPUAllocator: can't allocate memory")
_TRIED_TO_ALLOCATE = re.compile(r"[Tt]ried to allocate ([0-9.]+ ?[KMGT]i?B|[0-9]+ bytes)")


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` says an allocation failed: CUDA or CPU out of memory, or Python's MemoryError."""
    torch = sys.modules.get("torch")  # an exception from torch means torch is loaded; never import it here
    if isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.OutOfMemoryError)):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc)
        return any(message in text for message in _OOM_MESSAGES)
    return False


def allocation_text(error: str) -> str | None:
    """The size an out-of-memory error says it failed to allocate: ``"2.00 GiB"`` as torch writes it,
    a count of bytes (the CPU allocator's ``8388608 bytes``) as ``"8.39 MB"``; None where it says none."""
    found = _TRIED_TO_ALLOCATE.search(error)
    if found is None:
        return None
    text = found[1]
    return format_bytes(int(text.split()[0])) if text.endswith("bytes") else text

"""``--cooldown``: a pause between cells, so one cell's heat does not slow the next one's rounds.

Either a fixed pause (``--cooldown 30``, seconds) or a wait until the hottest readable thermal zone
is at or below a temperature (``--cooldown until=50C``), polled every ``POLL_S`` and never longer
than its maximum (``until=50C,max=300s``; 300 s by default): a board that cannot cool that far in
a warm room still finishes its sweep. Where no temperature is readable the wait is skipped and
says so (``hottest_c`` None), and the plugin warns once. The temperatures come from
``device_state.py``'s thermal-zone reader. Torch-free at import: the plugin parses the option in
every run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_edgeprof.errors import EdgeprofWarning, UsageError

POLL_S = 1.0
DEFAULT_MAX_WAIT_S = 300.0
MAX_SECONDS = 3600.0
_NUMBER = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_SECONDS = re.compile(rf"(?P<seconds>{_NUMBER})\s*s?")
_UNTIL = re.compile(rf"until\s*=\s*(?P<celsius>{_NUMBER})\s*C(?:\s*,\s*max\s*=\s*(?P<max>{_NUMBER})\s*s?)?")


class CooldownWarning(EdgeprofWarning):
    """A wait for a temperature where no thermal zone is readable: the cells do not wait."""


@dataclass(frozen=True)
class Cooldown:
    """A fixed pause (``seconds``), or a wait until the hottest zone is at most ``until_c`` (at most ``max_wait_s``)."""

    seconds: float | None = None
    until_c: float | None = None
    max_wait_s: float = DEFAULT_MAX_WAIT_S


def parse_cooldown(text: str) -> Cooldown:
    """``30`` or ``2.5s`` -> a pause; ``until=50C`` or ``until=50C,max=120s`` -> a wait for the temperature."""
    stripped = text.strip() if isinstance(text, str) else ""
    if (match := _SECONDS.fullmatch(stripped)) and 0 < float(match["seconds"]) <= MAX_SECONDS:
        return Cooldown(seconds=float(match["seconds"]))
    if (match := _UNTIL.fullmatch(stripped)) and 0 < float(match["celsius"]) <= 150:
        longest = float(match["max"]) if match["max"] else DEFAULT_MAX_WAIT_S
        if 0 < longest <= MAX_SECONDS:
            return Cooldown(until_c=float(match["celsius"]), max_wait_s=longest)
    raise UsageError(f"bad --cooldown {text!r}: expected seconds above 0 and at most 3600 (30 or 2.5s), or "
                     f"until=TEMPERATURE in C above 0 and at most 150 (until=50C, optionally until=50C,max=300s)")


def cool_down(cooldown: Cooldown, sysfs_root: Path = Path("/"), sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Wait as ``cooldown`` asks; what happened, for the cell's ``device_state["cooldown"]``:
    ``waited_s``, and for a temperature ``until_c``, ``hottest_c`` (None: none readable) and ``reached``."""
    if cooldown.seconds is not None:
        sleep(cooldown.seconds)
        return {"waited_s": cooldown.seconds}
    if cooldown.until_c is None:
        raise ValueError("a Cooldown needs seconds or until_c")
    from pytest_edgeprof.measure.device_state import hottest_c

    until_c = cooldown.until_c
    began = clock()
    hottest = hottest_c(sysfs_root)
    while hottest is not None and hottest > until_c and (left := cooldown.max_wait_s - (clock() - began)) > 0:
        sleep(min(POLL_S, left))
        hottest = hottest_c(sysfs_root)
    reached = hottest is not None and hottest <= until_c
    return {"waited_s": round(clock() - began, 3), "until_c": until_c, "hottest_c": hottest, "reached": reached}

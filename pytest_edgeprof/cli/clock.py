"""Where a command's wall time goes (``-v`` on stderr, ``timings_s`` in JSON)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Clock:
    """Where a command's wall time goes: importing the libraries it needs (torch and the modules that
    use it), building (checking the input, building or loading the model) and the work itself."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("import", "build", "work"), 0.0))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def imports(self, *modules: str) -> None:
        """Import ``modules`` now, in the import phase (the work imports nothing afterwards)."""
        with self.phase("import"):
            for module in modules:
                importlib.import_module(module)

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in self.seconds.items()}

    def line(self, command: str) -> str:
        phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.seconds.items())
        return f"edgeprof {command}: {phases} (total {sum(self.seconds.values()):.2f} s)"

    def report(self, args: argparse.Namespace) -> None:
        if args.verbose:
            print(self.line(args.command), file=sys.stderr)

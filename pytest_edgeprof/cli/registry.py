"""The subcommand registry: each ``edgeprof`` subcommand is a function ``run(args) -> int`` registered
with :func:`subcommand`, together with a function that adds its arguments to its parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

Run = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    configure: Configure
    run: Run


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, help: str, configure: Configure) -> Callable[[Run], Run]:
    """Register the decorated function as ``edgeprof NAME``."""

    def register(run: Run) -> Run:
        SUBCOMMANDS[name] = Subcommand(name, help, configure, run)
        return run

    return register

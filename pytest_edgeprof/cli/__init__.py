"""The ``edgeprof`` command.

Each subcommand is a module here with a function ``run(args) -> int`` registered with
:func:`registry.subcommand`, together with a function that adds its arguments to its parser (the
options several share are declared once, in ``shared_options.py``). ``main`` builds one argparse parser
from the registry, so a new subcommand is one module, imported below and placed in ``HELP_ORDER``
(a command left out of it comes last).

Building the parser imports no torch or matplotlib, so ``edgeprof --help`` and bad arguments answer
at once; each subcommand imports what it needs when it runs (``compare`` and ``limits`` neither,
``report`` matplotlib alone). The commands that build models (flops, prune, layers, capacity) say
where their wall time went: importing, building, working (``-v`` on stderr, ``timings_s`` in JSON).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

# Importing a command's module registers it.
from pytest_edgeprof.cli import (  # noqa: F401
    capacity,
    check,
    compare,
    dashboard,
    emulate_check,
    export,
    flops,
    history,
    layers,
    limits,
    predict,
    prune,
    report,
    store,
)
from pytest_edgeprof.cli.registry import SUBCOMMANDS, Subcommand, subcommand
from pytest_edgeprof.cli.shared_options import positive_int as _positive_int  # tests import it from here
from pytest_edgeprof.errors import UsageError

# The order of edgeprof --help: a command's place says when a user needs it (not how its module sorts).
HELP_ORDER = ("flops", "predict", "prune", "compare", "limits", "emulate-check", "report", "layers", "capacity", "store", "history",
              "check", "dashboard", "export")

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main", "subcommand", "_positive_int"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors, so every bad input ends the same way."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _in_help_order() -> list[Subcommand]:
    """The registered commands, those of ``HELP_ORDER`` first in its order, then any other (a plug-in)."""
    return sorted(SUBCOMMANDS.values(), key=lambda c: HELP_ORDER.index(c.name) if c.name in HELP_ORDER else len(HELP_ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgeprof", description="Profile torchvision and timm models for edge devices.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _in_help_order():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as error:
        print(f"edgeprof: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help and --version end argparse this way
        return exit_.code if isinstance(exit_.code, int) else 0

"""The option declarations the subcommands share, each declared once: an option the pytest plugin has
too (its name, metavar and help from ``pytest_edgeprof.shared_options``), typed arguments whose errors
read as one line, -v, a saved run and --storage, --variant and --weights, and counts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.shared_options import STORAGE, VARIANT, WEIGHTS, SharedOption, parse_positive_int


def add_shared(parser: argparse.ArgumentParser, option: SharedOption, *, default: Any, shown: str | None = None,
               **kwargs: Any) -> None:
    """An option the pytest plugin has too, with the same name, metavar and help (``shown``: the default in words)."""
    help_text = option.help(shown or str(default)).replace("%", "%%")  # argparse formats help with %
    parser.add_argument(option.flag, metavar=option.metavar, default=default, help=help_text, **kwargs)


def typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser so argparse shows its UsageError message instead of a generic 'invalid value'."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    convert.__name__ = parse.__name__
    return convert


def add_verbose(parser: argparse.ArgumentParser, work: str, build: str = "the input checked, the model built or loaded",
                in_json: bool = True) -> None:
    also = "; --json holds it too, as timings_s" if in_json else ""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"say on stderr where the wall time went: import, build ({build}), work ({work}){also}")


# --- the commands that read a saved run: compare, limits, emulate-check, report ---------------------

RUN_HELP = "a saved run: a JSON file, a run number (0001), a name or fragment of one, or latest"


def add_storage(parser: argparse.ArgumentParser) -> None:
    add_shared(parser, STORAGE, default=".benchmarks")


def positive_int(text: str) -> int:
    return parse_positive_int(text, f"bad count {text!r}: expected a positive integer")


def add_variant(parser: argparse.ArgumentParser) -> None:
    from pytest_edgeprof.models.prune import variant_target

    add_shared(parser, VARIANT, type=typed(checked(variant_target)), default="base")
    add_shared(parser, WEIGHTS, default=None, shown="random")


def checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """A parser that keeps the text once ``check`` accepts it."""

    def parse(text: str) -> str:
        check(text)
        return text

    return parse


def json_list(rows: list[dict[str, Any]]) -> str:
    """A JSON list with one object per line: valid JSON for scripts, still readable by eye (flops, predict)."""
    return "[\n" + ",\n".join("  " + json.dumps(row) for row in rows) + "\n]"

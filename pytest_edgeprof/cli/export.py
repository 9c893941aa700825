"""``edgeprof export``: a saved run in another tool's format (Bencher Metric Format)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import RUN_HELP, add_storage, typed
from pytest_edgeprof.paths import output_file

FORMATS = ("bmf",)


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ref", metavar="RUN", help=RUN_HELP)
    parser.add_argument("--format", choices=FORMATS, required=True,
                        help="bmf: Bencher Metric Format JSON, one benchmark per cell, one measure per metric it has")
    parser.add_argument("--out", type=typed(_export_file), default=None, metavar="FILE",
                        help="write to FILE (default: print to stdout)")
    parser.add_argument("--predicted", action="store_true",
                        help="also export an emulated run's predicted figures, under predicted-... measures")
    add_storage(parser)


def _export_file(text: str) -> Path:
    return output_file(text, "--out", "bmf.json")


@subcommand("export", "a saved run in Bencher Metric Format (bmf) for Bencher", _configure_export)
def run_export(args: argparse.Namespace) -> int:
    from pytest_edgeprof.runs import bmf
    from pytest_edgeprof.runs.saved import load_run

    text = bmf.render(load_run(args.run_ref, args.storage), predicted=args.predicted)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text, encoding="utf8")
    return 0

"""``edgeprof report``: PNG plots and an index.html from a saved run."""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import RUN_HELP, add_storage, typed
from pytest_edgeprof.paths import output_folder


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ref", metavar="RUN", help=RUN_HELP)
    parser.add_argument("--out", type=typed(_report_folder), default="edgeprof-report", metavar="DIR",
                        help="where to write the PNGs and index.html (default: edgeprof-report)")
    add_storage(parser)


def _report_folder(text: str) -> Path:
    return output_folder(text, "--out", "the report's PNGs and index.html")


@subcommand("report", "PNG plots per model and an index.html from a saved run", _configure_report)
def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pytest_edgeprof.runs.report import write_report
    from pytest_edgeprof.runs.saved import load_run

    run = load_run(args.run_ref, args.storage)
    written = write_report(run, Path(args.out))
    for path in written:
        print(path)
    return 0

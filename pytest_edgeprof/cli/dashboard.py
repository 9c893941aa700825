"""``edgeprof dashboard``: a static site of saved runs, per machine and cell over commits."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import RUN_HELP, add_storage, typed
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.paths import output_folder

if TYPE_CHECKING:
    from pytest_edgeprof.runs.dashboard import MachineRun, RegressionMark


def _configure_dashboard(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_refs", metavar="RUN", nargs="*",
                        help=f"saved runs to show (or give --store): each {RUN_HELP}")
    parser.add_argument("--store", metavar="URL", default=None,
                        help="read every machine's runs from a results store (sqlite:///PATH, postgresql://...)")
    parser.add_argument("--out", type=typed(_dashboard_folder), default="edgeprof-dashboard", metavar="DIR",
                        help="where to write the site (default: edgeprof-dashboard)")
    add_storage(parser)


def _dashboard_folder(text: str) -> Path:
    return output_folder(text, "--out", "the dashboard's pages")


def runs_from_store(url: str) -> tuple[Sequence[MachineRun], Collection[RegressionMark]]:
    """Every run of the store at ``url`` with its machine, and the regressions its check finds.

    The one place the results store plugs in: ``open_store(url).runs()`` as MachineRuns, and the
    store's check as RegressionMarks (pytest_edgeprof/runs/dashboard/data.py)."""
    raise UsageError(f"--store {url}: this build of edgeprof has no results store; give saved runs instead "
                     "(edgeprof dashboard RUN... --out DIR)")


def runs_from_files(refs: Sequence[str], storage: str) -> list[MachineRun]:
    from pytest_edgeprof.runs.dashboard import MachineRun, machine_of
    from pytest_edgeprof.runs.saved import load_run

    runs = [load_run(ref, storage) for ref in refs]
    return [MachineRun(machine_of(run), run) for run in runs]


@subcommand("dashboard", "a static site of saved runs: the latest per machine, each cell's metrics over commits",
            _configure_dashboard)
def run_dashboard(args: argparse.Namespace) -> int:
    from pytest_edgeprof.runs.dashboard import write_dashboard

    if bool(args.store) == bool(args.run_refs):
        raise UsageError("edgeprof dashboard: give saved runs (RUN...) or --store URL, one of the two")
    regressions: Collection[RegressionMark] = ()
    if args.store:
        runs, regressions = runs_from_store(args.store)
    else:
        runs = runs_from_files(args.run_refs, args.storage)
    print(write_dashboard(runs, Path(args.out), regressions))
    return 0

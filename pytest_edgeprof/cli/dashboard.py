"""``edgeprof dashboard``: a static site of saved runs, per machine and cell over commits."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import RUN_HELP, add_storage, typed
from pytest_edgeprof.cli.store_options import add_store, open_from_args
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.paths import output_folder

if TYPE_CHECKING:
    from pytest_edgeprof.runs.dashboard import MachineRun, RegressionMark


def _configure_dashboard(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_refs", metavar="RUN", nargs="*",
                        help=f"saved runs to show (or give --store): each {RUN_HELP}")
    add_store(parser, "read every machine's runs, and the regressions its check finds, from the results store")
    parser.add_argument("--out", type=typed(_dashboard_folder), default="edgeprof-dashboard", metavar="DIR",
                        help="where to write the site (default: edgeprof-dashboard)")
    add_storage(parser)


def _dashboard_folder(text: str) -> Path:
    return output_folder(text, "--out", "the dashboard's pages")


def runs_from_store(args: argparse.Namespace) -> tuple[Sequence[MachineRun], Collection[RegressionMark]]:
    """Every run of the store with its machine, and the regressions ``edgeprof check`` finds in each
    machine's latest run."""
    from pytest_edgeprof.runs.dashboard import MachineRun, RegressionMark
    from pytest_edgeprof.runs.store.check import check_store
    from pytest_edgeprof.runs.store.records import REF_PREFIX

    with open_from_args(args) as store:
        runs = [MachineRun(stored.machine, stored.run, stored.ref) for stored in store.runs()]
        marks = [RegressionMark(check.machine, cell, judged.metric.name, f"{REF_PREFIX}{check.run_id}")
                 for check in check_store(store)
                 for cell, found in check.regressed_cells().items() for judged in found]
    return runs, marks


def runs_from_files(refs: Sequence[str], storage: str) -> list[MachineRun]:
    from pytest_edgeprof.runs.dashboard import MachineRun
    from pytest_edgeprof.runs.saved import load_run

    runs = [load_run(ref, storage) for ref in refs]
    return [MachineRun(run.machine, run) for run in runs]


@subcommand("dashboard", "a static site of saved runs: the latest per machine, each cell's metrics over commits",
            _configure_dashboard)
def run_dashboard(args: argparse.Namespace) -> int:
    from pytest_edgeprof.runs.dashboard import write_dashboard

    if args.store is not None and args.run_refs:
        raise UsageError("edgeprof dashboard: give saved runs (RUN...) or --store URL, not both")
    regressions: Collection[RegressionMark] = ()
    runs: Sequence[MachineRun]
    if args.run_refs:
        runs = runs_from_files(args.run_refs, args.storage)
    else:
        runs, regressions = runs_from_store(args)  # --store, else $EDGEPROF_STORE, else one line
    print(write_dashboard(runs, Path(args.out), regressions))
    return 0

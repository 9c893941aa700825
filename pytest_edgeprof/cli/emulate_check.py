"""``edgeprof emulate-check``: an emulated run's predicted latencies against its measured ones."""

from __future__ import annotations

import argparse

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import RUN_HELP, add_storage


def _configure_emulate_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ref", metavar="RUN", help=f"a run made with --emulate (host to check the model): {RUN_HELP}")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_storage(parser)


@subcommand(
    "emulate-check",
    "an emulated run's predicted latency against its measured one, per cell; the share within ±10/25/50 %%",
    _configure_emulate_check,
)
def run_emulate_check(args: argparse.Namespace) -> int:
    from pytest_edgeprof.runs import emulate_check
    from pytest_edgeprof.runs.saved import load_run

    report = emulate_check.check_run(load_run(args.run_ref, args.storage))
    print(emulate_check.to_json(report) if args.json else emulate_check.render(report))
    return 0

"""``edgeprof check``: the latest run of each machine against its previous runs; exit 1 on a regression."""

from __future__ import annotations

import argparse
import sys

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import positive_int, typed
from pytest_edgeprof.cli.store_options import add_store, open_from_args

LOOKBACK = 20  # runs.store.check.LOOKBACK, not imported to build the parser (a test checks they agree)


def _configure_check(parser: argparse.ArgumentParser) -> None:
    add_store(parser)
    parser.add_argument("--baseline", metavar="BRANCH", default=None,
                        help="judge against the previous runs on this branch only, e.g. main (default: every previous run)")
    parser.add_argument("--machine", metavar="NAME", default=None, help="one machine (default: every machine)")
    parser.add_argument("--lookback", metavar="N", type=typed(positive_int), default=LOOKBACK,
                        help=f"previous runs each value is judged against (default {LOOKBACK})")


@subcommand(
    "check",
    "judge the latest stored run of each machine against its previous runs (lookback z-score); exit 1 on a regression",
    _configure_check,
)
def run_check(args: argparse.Namespace) -> int:
    from pytest_edgeprof.runs.store.check import check_store

    with open_from_args(args) as store:
        checks = check_store(store, args.baseline, lookback=args.lookback, machine=args.machine)
    if not checks:
        print("the store holds no run" + (f" of machine {args.machine}" if args.machine else ""))
        return 0
    regressed = 0
    for check in checks:
        print(check.header())
        for line in check.lines():
            print(line, file=sys.stderr)
            regressed += 1
    if regressed:
        print(f"edgeprof check: {regressed} regressed cell(s)", file=sys.stderr)
    return 1 if regressed else 0

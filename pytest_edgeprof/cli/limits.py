"""``edgeprof limits``: per configuration the largest batch within every budget, and the recommendation."""

from __future__ import annotations

import argparse

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import RUN_HELP, add_storage
from pytest_edgeprof.metrics import OBJECTIVES


def _configure_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ref", metavar="RUN", help=RUN_HELP)
    parser.add_argument(
        "--objective", choices=tuple(OBJECTIVES), default="throughput",
        help="what the recommended configuration is best at, among the cells within every budget (default: throughput)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_storage(parser)


@subcommand(
    "limits",
    "per model, variant (with its precision and runtime) and input shape: the largest batch within every budget, "
    "the first beyond and why; then the best configuration within all budgets",
    _configure_limits,
)
def run_limits(args: argparse.Namespace) -> int:
    from pytest_edgeprof.runs import limits
    from pytest_edgeprof.runs.saved import load_run

    run = load_run(args.run_ref, args.storage)
    print(limits.to_json(run, args.objective) if args.json else limits.render(run, args.objective))
    return 0

"""``edgeprof compare``: two saved runs cell by cell, and the --fail regression gate."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import RUN_HELP, add_storage
from pytest_edgeprof.cli.store_options import STORE_REF, add_store, load_ref


def _color(stream: Any) -> bool:
    """ANSI colours only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _configure_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help=f"the baseline: {RUN_HELP}, or {STORE_REF}")
    parser.add_argument("run_b", metavar="RUN_B", help=f"the run compared with it: {RUN_HELP}, or {STORE_REF}")
    parser.add_argument(
        "--fail", metavar="SPEC", default=None,
        help="exit 1 when a cell gets worse past a limit, e.g. latency,memory:5%%,energy:10%%,top1:-0.5 "
        "(more latency/memory/energy/flops is worse, less throughput/top1; top1 in percentage points); latency and "
        "throughput fail only when the change is also significant (beyond the runs' 95%% repeat intervals pooled), "
        "by at least 2%% alone or the limit given (latency:5%%)",
    )
    parser.add_argument(
        "--configs", metavar="A,B", default=None,
        help="compare one precision and runtime of RUN_A with another of RUN_B (the same file twice for one run), "
        "cell by cell, e.g. fp32-eager,int8-onnxruntime",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="print CSV: one row per cell and metric")
    output.add_argument("--json", action="store_true", help="print JSON")
    add_storage(parser)
    add_store(parser, "the results store that store:ID runs are read from")


@subcommand(
    "compare",
    "compare two saved runs cell by cell; exit 1 with --fail when a cell regressed, 2 on bad input",
    _configure_compare,
)
def run_compare(args: argparse.Namespace) -> int:
    from pytest_edgeprof.runs.compare import (
        compare_runs,
        one_deployment,
        parse_configs,
        parse_fail_spec,
        regressions,
        render_table,
        to_csv,
        to_json,
    )

    thresholds = parse_fail_spec(args.fail) if args.fail is not None else []  # bad spec: before any file is read
    configs = parse_configs(args.configs) if args.configs is not None else None
    run_a, run_b = load_ref(args.run_a, args), load_ref(args.run_b, args)
    if configs:
        run_a, run_b = one_deployment(run_a, *configs[0]), one_deployment(run_b, *configs[1])
    comparison = compare_runs(run_a, run_b)
    failed = regressions(run_a, run_b, thresholds)
    if args.csv:
        print(to_csv(comparison), end="")
    elif args.json:
        print(to_json(comparison, failed))
    else:
        print(render_table(comparison, color=_color(sys.stdout), failed=failed))
    for regression in failed:
        print(f"REGRESSION {regression.line()}", file=sys.stderr)
    if failed:
        print(f"edgeprof compare: {len(failed)} regression(s) past --fail {args.fail}", file=sys.stderr)
    return 1 if failed else 0

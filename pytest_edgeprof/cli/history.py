"""``edgeprof history``: a metric's series over the stored runs, per machine and cell."""

from __future__ import annotations

import argparse
import json

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import typed
from pytest_edgeprof.cli.store_options import add_store, open_from_args
from pytest_edgeprof.metrics import COMPARED, METRICS, metric


def _metric(text: str) -> str:
    return metric(text).name


def _configure_history(parser: argparse.ArgumentParser) -> None:
    add_store(parser)
    parser.add_argument("--machine", metavar="NAME", default=None, help="one machine's runs (default: every machine)")
    parser.add_argument("--cell", metavar="ID", default=None, help="one cell, e.g. resnet50-base-b8-224x224 (default: every cell)")
    parser.add_argument("--metric", metavar="NAME", type=typed(_metric), default="latency",
                        help=f"the metric (default: latency): {', '.join(m.name for m in COMPARED)}")
    parser.add_argument("--json", action="store_true", help="print JSON: one object per value")


@subcommand("history", "a metric's series over the results store's runs, per machine and cell", _configure_history)
def run_history(args: argparse.Namespace) -> int:
    with open_from_args(args) as store:
        points = store.history(machine=args.machine, cell=args.cell, metric=args.metric)
    if args.json:
        print(json.dumps([point.__dict__ for point in points], indent=1))
        return 0
    if not points:
        print(f"no stored {args.metric} values match (edgeprof history without --machine/--cell lists them all)")
        return 0
    fmt = METRICS[args.metric].format
    series = None
    for point in points:
        if (point.machine, point.cell) != series:
            series = (point.machine, point.cell)
            print(f"{point.machine}  {point.cell}  {METRICS[args.metric].label}")
        when = point.saved_at.replace("T", " ")[:16]
        print(f"  store:{point.run_id:<6} {when:16}  {point.commit_id[:10]:10}  {point.branch[:20]:20}  {fmt(point.value)}")
    return 0

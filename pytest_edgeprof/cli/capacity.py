"""``edgeprof capacity``: the largest batch within a memory budget, found by isolated probes."""

from __future__ import annotations

import argparse
import sys

from pytest_edgeprof.cli.clock import Clock
from pytest_edgeprof.cli.models import model_modules, model_on_device
from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import add_shared, add_variant, add_verbose, typed
from pytest_edgeprof.shared_options import DEVICE, SHAPE, parse_shape, size_text


def _configure_capacity(parser: argparse.ArgumentParser) -> None:
    from pytest_edgeprof.metrics import parse_bytes

    parser.add_argument("model", metavar="MODEL", help="a torchvision classification model name")
    add_shared(parser, SHAPE, type=typed(parse_shape), default=None, shown="the model's own size, 224 for most")
    parser.add_argument("--memory", type=typed(parse_bytes), required=True,
                        help="the memory budget, e.g. 2.6GB (2.6e9 bytes) or 2.6GiB")
    add_shared(parser, DEVICE, default="auto")
    add_variant(parser)
    parser.add_argument("--json", action="store_true", help="print JSON: the probes and the answer")
    add_verbose(parser, "the isolated probes, each a process that imports torch")


@subcommand("capacity", "the largest batch that fits a memory budget, found by measuring isolated probes", _configure_capacity)
def run_capacity(args: argparse.Namespace) -> int:
    clock = Clock()
    clock.imports(*model_modules(args), "pytest_edgeprof.runs.capacity")
    from pytest_edgeprof.models.prune import PruneUnsupported
    from pytest_edgeprof.runs.capacity import find_capacity

    with clock.phase("build"):
        ref, profile, shape = model_on_device(args)
        if ref.variant != "base":  # pruned (or found in the cache) once here; each probe loads it from the cache
            try:
                ref.build("cpu", progress=not args.json)
            except PruneUnsupported as error:
                print(f"edgeprof: cannot prune {ref.name}: {error}", file=sys.stderr)
                return 1
    if not args.json:
        print(f"{ref.name} {args.variant} at {size_text(shape)} on {profile.name}: largest batch within {args.memory:,} bytes")
    with clock.phase("work"):
        report = find_capacity(ref, shape, profile, args.memory, on_probe=None if args.json else lambda p: print(p.line()))
    print(report.to_json(extra={"timings_s": clock.rounded()}) if args.json else report.summary())
    clock.report(args)
    return 0

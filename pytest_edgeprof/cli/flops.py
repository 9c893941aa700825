"""``edgeprof flops``: FLOPs, MACs and parameters of models."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_edgeprof.cli.clock import Clock
from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import add_shared, add_verbose, json_list, typed
from pytest_edgeprof.shared_options import SHAPE, parse_batch_size, parse_shape, shape_text


def _configure_flops(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help="torchvision model names (any task) or timm:NAME")
    add_shared(parser, SHAPE, type=typed(parse_shape), default=None, shown="each model's own size, e.g. 299 for inception_v3")
    parser.add_argument("--batch", type=typed(parse_batch_size), default=1, help="batch size (default: 1)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per model")
    add_verbose(parser, "counting, which builds each model on meta tensors", "the names checked", in_json=False)


@subcommand("flops", "FLOPs, MACs and parameters of models (FLOPs = 2 x MACs)", _configure_flops)
def run_flops(args: argparse.Namespace) -> int:
    clock = Clock()
    clock.imports("pytest_edgeprof.measure.flops")
    from pytest_edgeprof.measure.flops import count_model_cost
    from pytest_edgeprof.models.zoo import resolve_model_name

    with clock.phase("build"):
        names = [resolve_model_name(name) for name in args.models]  # every name checked before counting
    with clock.phase("work"):
        rows = [_flops_row(name, count_model_cost(name, args.shape, args.batch)) for name in names]
    print(json_list(rows) if args.json else _flops_table(rows))
    clock.report(args)
    return 0


def _flops_row(name: str, cost: Any) -> dict[str, Any]:  # cost: measure.flops.ModelCost
    from pytest_edgeprof.metrics import FLOPS

    return {"model": name, "shape": list(cost.input_shape), "batch": cost.batch_size, FLOPS.key: cost.flops,
            "macs": cost.macs, "params": cost.params, "flops_method": cost.method, **({"flops_note": cost.note} if cost.note else {})}


def _flops_table(rows: list[dict[str, Any]]) -> str:
    width = max([20, *(len(row["model"]) for row in rows)])
    header = f"{'model':<{width}} {'input':>11} {'batch':>6} {'GMACs':>10} {'GFLOPs':>10} {'params (M)':>11}"
    lines = [header, "-" * len(header)]
    for row in rows:
        shape = shape_text(row["shape"])
        lines.append(
            f"{row['model']:<{width}} {shape:>11} {row['batch']:>6} {row['macs'] / 1e9:>10.3f}"
            f" {row['flops'] / 1e9:>10.3f} {row['params'] / 1e6:>11.2f}"
        )
    lines += [f"{row['model']}: {row['flops_note']}" for row in rows if "flops_note" in row]
    return "\n".join(lines)

"""``edgeprof predict``: a model's latency, memory and energy on a board one does not have, predicted."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_edgeprof.cli.clock import Clock
from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import add_shared, add_verbose, json_list, typed
from pytest_edgeprof.shared_options import SHAPE, parse_batch_size, parse_shape, shape_text


def _configure_predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help="torchvision model names (any task) or timm:NAME")
    parser.add_argument("--target", required=True, metavar="PROFILE",
                        help="the board: jetson-nano, jetson-orin-nano, jetson-orin-nano-super, jetson-agx-xavier, "
                             "rtx-3070, rtx-3060")
    parser.add_argument("--precision", default="fp32", help="fp32, fp16, bf16 or int8 (default: fp32)")
    parser.add_argument("--runtime", default="eager", help="eager, compile, onnxruntime or tensorrt (default: eager)")
    parser.add_argument("--batch", type=typed(parse_batch_size), default=1, help="batch size (default: 1)")
    add_shared(parser, SHAPE, type=typed(parse_shape), default=None, shown="each model's own size")
    parser.add_argument("--power-mode", default=None, metavar="MODE",
                        help="the board's nvpmodel mode, e.g. 5W on a jetson-nano (default: its highest)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per model")
    add_verbose(parser, "predicting, on meta tensors", "the names checked", in_json=False)


@subcommand("predict", "predicted latency (with its prediction interval), memory and energy of models on a board", _configure_predict)
def run_predict(args: argparse.Namespace) -> int:
    clock = Clock()
    clock.imports("pytest_edgeprof.measure.predict.predictor")
    from pytest_edgeprof.measure.predict.predictor import Request, check, predict
    from pytest_edgeprof.models.zoo import reference_input_shape, resolve_model_name

    with clock.phase("build"):
        names = [resolve_model_name(name) for name in args.models]  # every name checked before predicting
        requests = [Request(name, args.target, args.precision.strip().lower(), args.runtime.strip().lower(), args.batch,
                            args.shape or reference_input_shape(name), args.power_mode) for name in names]
        for request in requests:
            check(request)
    with clock.phase("work"):
        rows = [predict(request) for request in requests]
    print(json_list(rows) if args.json else _table(rows))
    clock.report(args)
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    lines = [f"{first['target']} ({first['power_mode'] or 'its only mode'}), {first['runtime']} {first['precision']}: "
             "PREDICTED, nothing measured"]
    width = max([12, *(len(row["model"]) for row in rows)])
    header = (f"{'model':<{width}} {'input':>9} {'batch':>5} {'latency ms':>10} {'90 % interval':>17} "
              f"{'peak MB':>8} {'fits':>4} {'J/image':>8}")
    lines += [header, "-" * len(header)]
    for row in rows:
        low, high = row["latency_ms_interval"]
        lines.append(f"{row['model']:<{width}} {shape_text(row['input_shape']):>9} {row['batch_size']:>5} "
                     f"{row['latency_ms']:>10.3g} {f'{low:.3g}-{high:.3g}':>17} {row['peak_mem_bytes'] / 1e6:>8.0f} "
                     f"{'yes' if row['fits'] else 'NO':>4} {row['energy_j_per_image']:>8.3g}")
    return "\n".join([*lines, f"method: {first['method']}"])

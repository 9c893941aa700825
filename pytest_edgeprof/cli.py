"""The ``edgeprof`` command.

Each subcommand is a function ``run(args) -> int`` registered with :func:`subcommand`, together with a
function that adds its arguments to its parser. ``main`` builds one argparse parser from the registry,
so a new subcommand is one decorated function and one ``configure`` function, nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from .errors import UsageError
from .zoo import parse_batch_size, parse_shape, resolve_model_name

Run = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    configure: Configure
    run: Run


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, help: str, configure: Configure) -> Callable[[Run], Run]:
    """Register the decorated function as ``edgeprof NAME``."""

    def register(run: Run) -> Run:
        SUBCOMMANDS[name] = Subcommand(name, help, configure, run)
        return run

    return register


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors, so every bad input ends the same way."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser so argparse shows its UsageError message instead of a generic 'invalid value'."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    convert.__name__ = parse.__name__
    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgeprof", description="Profile torchvision CNNs for edge devices.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as error:
        print(f"edgeprof: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help and --version end argparse this way
        return exit_.code if isinstance(exit_.code, int) else 0


# --- edgeprof flops ----------------------------------------------------------------------------------


def _configure_flops(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help="torchvision classification model names")
    parser.add_argument(
        "--shape",
        type=_typed(parse_shape),
        default=None,
        help="input size, 224 or HxW like 224x160 (default: each model's own size, e.g. 299 for inception_v3)",
    )
    parser.add_argument("--batch", type=_typed(parse_batch_size), default=1, help="batch size (default: 1)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per model")


@subcommand("flops", "FLOPs, MACs and parameters of models (FLOPs = 2 x MACs)", _configure_flops)
def run_flops(args: argparse.Namespace) -> int:
    from .flops import count_model_cost  # torch import kept out of `edgeprof --help`

    names = [resolve_model_name(name) for name in args.models]  # every name checked before counting
    rows = []
    for name in names:
        cost = count_model_cost(name, args.shape, args.batch)
        rows.append(
            {
                "model": name,
                "shape": list(cost.input_shape),
                "batch": cost.batch_size,
                "flops": cost.flops,
                "macs": cost.macs,
                "params": cost.params,
            }
        )
    print(_json_list(rows) if args.json else _flops_table(rows))
    return 0


def _json_list(rows: list[dict[str, Any]]) -> str:
    """A JSON list with one object per line: valid JSON for scripts, still readable by eye."""
    return "[\n" + ",\n".join("  " + json.dumps(row) for row in rows) + "\n]"


def _flops_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'model':<20} {'input':>11} {'batch':>6} {'GMACs':>10} {'GFLOPs':>10} {'params (M)':>11}"
    lines = [header, "-" * len(header)]
    for row in rows:
        shape = "x".join(str(d) for d in row["shape"])
        lines.append(
            f"{row['model']:<20} {shape:>11} {row['batch']:>6} {row['macs'] / 1e9:>10.3f}"
            f" {row['flops'] / 1e9:>10.3f} {row['params'] / 1e6:>11.2f}"
        )
    return "\n".join(lines)


# --- answers from saved runs: compare, limits, report, layers ------------------------------------

_RUN_HELP = "a saved run: a JSON file, a run number (0001), a name or fragment of one, or latest"


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", default=".benchmarks", metavar="DIR",
        help="where run numbers and names are looked up, as pytest-benchmark's --benchmark-storage (default: .benchmarks)",
    )


def _color(stream: Any) -> bool:
    """ANSI colours only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _configure_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help=f"the baseline: {_RUN_HELP}")
    parser.add_argument("run_b", metavar="RUN_B", help=f"the run compared with it: {_RUN_HELP}")
    parser.add_argument(
        "--fail", metavar="SPEC", default=None,
        help="exit 1 when a cell gets worse past a limit, e.g. latency:10%%,memory:5%%,energy:10%%,top1:-0.5 "
        "(more latency/memory/energy/flops is worse, less throughput/top1; top1 in percentage points)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="print CSV: one row per cell and metric")
    output.add_argument("--json", action="store_true", help="print JSON")
    _add_storage(parser)


@subcommand(
    "compare",
    "compare two saved runs cell by cell; exit 1 with --fail when a cell regressed, 2 on bad input",
    _configure_compare,
)
def run_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .compare import compare_runs, parse_fail_spec, regressions, render_table, to_csv, to_json
    from .results import load_run

    thresholds = parse_fail_spec(args.fail) if args.fail is not None else []  # bad spec: before any file is read
    run_a, run_b = load_run(args.run_a, Path(args.storage)), load_run(args.run_b, Path(args.storage))
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


def _configure_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ref", metavar="RUN", help=_RUN_HELP)
    parser.add_argument(
        "--objective", choices=("throughput", "energy", "latency", "accuracy"), default="throughput",
        help="what the recommended configuration is best at, among the cells within every budget (default: throughput)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    _add_storage(parser)


@subcommand(
    "limits",
    "per model, variant and input shape: the largest batch within every budget, the first beyond and why; "
    "then the best configuration within all budgets",
    _configure_limits,
)
def run_limits(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import limits
    from .results import load_run

    run = load_run(args.run_ref, Path(args.storage))
    print(limits.to_json(run, args.objective) if args.json else limits.render(run, args.objective))
    return 0


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ref", metavar="RUN", help=_RUN_HELP)
    parser.add_argument("--out", default="edgeprof-report", metavar="DIR", help="where to write the PNGs and index.html (default: edgeprof-report)")
    _add_storage(parser)


@subcommand("report", "PNG plots per model and an index.html from a saved run", _configure_report)
def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .report import write_report
    from .results import load_run

    run = load_run(args.run_ref, Path(args.storage))
    written = write_report(run, Path(args.out))
    for path in written:
        print(path)
    return 0


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"bad count {text!r}: expected a positive integer")
    return int(text)


def _configure_layers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a torchvision classification model name")
    parser.add_argument("--shape", type=_typed(parse_shape), default=None,
                        help="input size, 224 or HxW like 224x160 (default: the model's own size, 224 for most)")
    parser.add_argument("--batch", type=_typed(parse_batch_size), default=1, help="batch size (default: 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, auto, or a device profile name")
    parser.add_argument("--variant", default="base", help="base (pruned variants such as p50 come with pruning)")
    parser.add_argument("--top", type=_typed(_positive_int), default=None, metavar="N", help="show only the N costliest layers")
    parser.add_argument("--sort", choices=("latency", "flops", "params", "activations"), default="latency",
                        help="what 'costliest' means (default: latency, the measured time)")
    parser.add_argument("--runs", type=_typed(_positive_int), default=10, help="timed runs after the warm-up (default: 10)")
    parser.add_argument("--plot", metavar="FILE", default=None, help="also draw a bar chart of the top layers (PNG)")
    parser.add_argument("--json", action="store_true", help="print JSON")


@subcommand("layers", "per layer: FLOPs, parameters, output activations and measured share of the time", _configure_layers)
def run_layers(args: argparse.Namespace) -> int:
    if args.variant != "base":
        raise UsageError(f"--variant {args.variant}: pruned variants are not available yet; accepted: base")
    from . import layers
    from .device import resolve_device
    from .zoo import build_model, reference_input_shape

    name = resolve_model_name(args.model)
    profile_device = resolve_device(args.device)
    shape = args.shape or reference_input_shape(name)
    model = build_model(name, None, profile_device.torch_device)
    profile = layers.profile_layers(model, shape, args.batch, profile_device.torch_device, args.runs, name=name)
    if args.json:
        print(layers.to_json(profile, args.top, args.sort))
    else:
        print(layers.render(profile, args.top, args.sort))
    if args.plot:
        layers.plot(profile, args.plot, args.top or 20, args.sort)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

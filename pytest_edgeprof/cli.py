"""The ``edgeprof`` command.

Each subcommand is a function ``run(args) -> int`` registered with :func:`subcommand`, together with a
function that adds its arguments to its parser. ``main`` builds one argparse parser from the registry,
so a new subcommand is one decorated function and one ``configure`` function, nothing else.

Building the parser imports no torch or matplotlib, so ``edgeprof --help`` and bad arguments answer
at once; each subcommand imports what it needs when it runs (``compare`` and ``limits`` neither,
``report`` matplotlib alone). The commands that build models (flops, prune, layers, capacity) say
where their wall time went: importing, building, working (``-v`` on stderr, ``timings_s`` in JSON).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.metrics import OBJECTIVES
from pytest_edgeprof.paths import default_cache_dir, output_file, output_folder
from pytest_edgeprof.shared_options import (DEVICE, SHAPE, STORAGE, VARIANT, WEIGHTS, SharedOption, parse_batch_size,
                                            parse_shape)

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


def _add_shared(parser: argparse.ArgumentParser, option: SharedOption, *, default: Any, shown: str | None = None,
                **kwargs: Any) -> None:
    """An option the pytest plugin has too, with the same name, metavar and help (``shown``: the default in words)."""
    help_text = option.help(shown or str(default)).replace("%", "%%")  # argparse formats help with %
    parser.add_argument(option.flag, metavar=option.metavar, default=default, help=help_text, **kwargs)


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser so argparse shows its UsageError message instead of a generic 'invalid value'."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    convert.__name__ = parse.__name__
    return convert


@dataclass
class Clock:
    """Where a command's wall time goes: importing the libraries it needs (torch and the modules that
    use it), building (checking the input, building or loading the model) and the work itself."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("import", "build", "work"), 0.0))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def imports(self, *modules: str) -> None:
        """Import ``modules`` now, in the import phase (the work imports nothing afterwards)."""
        with self.phase("import"):
            for module in modules:
                importlib.import_module(module)

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in self.seconds.items()}

    def line(self, command: str) -> str:
        phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.seconds.items())
        return f"edgeprof {command}: {phases} (total {sum(self.seconds.values()):.2f} s)"

    def report(self, args: argparse.Namespace) -> None:
        if args.verbose:
            print(self.line(args.command), file=sys.stderr)


def _add_verbose(parser: argparse.ArgumentParser, work: str, build: str = "the input checked, the model built or loaded",
                 in_json: bool = True) -> None:
    also = "; --json holds it too, as timings_s" if in_json else ""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"say on stderr where the wall time went: import, build ({build}), work ({work}){also}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgeprof", description="Profile torchvision and timm models for edge devices.")
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
    parser.add_argument("models", nargs="+", metavar="MODEL", help="torchvision model names (any task) or timm:NAME")
    _add_shared(parser, SHAPE, type=_typed(parse_shape), default=None, shown="each model's own size, e.g. 299 for inception_v3")
    parser.add_argument("--batch", type=_typed(parse_batch_size), default=1, help="batch size (default: 1)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per model")
    _add_verbose(parser, "counting, which builds each model on meta tensors", "the names checked", in_json=False)


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
    print(_json_list(rows) if args.json else _flops_table(rows))
    clock.report(args)
    return 0


def _flops_row(name: str, cost: Any) -> dict[str, Any]:  # cost: measure.flops.ModelCost
    from pytest_edgeprof.metrics import FLOPS

    return {"model": name, "shape": list(cost.input_shape), "batch": cost.batch_size, FLOPS.key: cost.flops,
            "macs": cost.macs, "params": cost.params, "flops_method": cost.method, **({"flops_note": cost.note} if cost.note else {})}


def _json_list(rows: list[dict[str, Any]]) -> str:
    """A JSON list with one object per line: valid JSON for scripts, still readable by eye."""
    return "[\n" + ",\n".join("  " + json.dumps(row) for row in rows) + "\n]"


def _flops_table(rows: list[dict[str, Any]]) -> str:
    width = max([20, *(len(row["model"]) for row in rows)])
    header = f"{'model':<{width}} {'input':>11} {'batch':>6} {'GMACs':>10} {'GFLOPs':>10} {'params (M)':>11}"
    lines = [header, "-" * len(header)]
    for row in rows:
        shape = "x".join(str(d) for d in row["shape"])
        lines.append(
            f"{row['model']:<{width}} {shape:>11} {row['batch']:>6} {row['macs'] / 1e9:>10.3f}"
            f" {row['flops'] / 1e9:>10.3f} {row['params'] / 1e6:>11.2f}"
        )
    lines += [f"{row['model']}: {row['flops_note']}" for row in rows if "flops_note" in row]
    return "\n".join(lines)


# --- edgeprof prune ----------------------------------------------------------------------------------


def _configure_prune(parser: argparse.ArgumentParser) -> None:
    from pytest_edgeprof.models.prune import METHODS, parse_prune_target

    parser.add_argument("model", metavar="MODEL", help="a torchvision classification model name")
    parser.add_argument(
        "--target", type=_typed(parse_prune_target), required=True, help="fraction of FLOPs to remove, 0.05 to 0.8"
    )
    parser.add_argument("--method", choices=METHODS, default="magnitude", help="channel importance")
    _add_shared(parser, WEIGHTS, default=None, shown="random")
    parser.add_argument("--data", type=Path, default=None, help="an ImageFolder for Taylor importance")
    parser.add_argument("--data-limit", type=_typed(_positive_int), default=256, help="images of --data (256)")
    parser.add_argument("--out", type=_typed(_variant_out), default=None, help="also write the variant to FILE (load_variant reads it)")
    parser.add_argument(
        "--cache-dir", type=_typed(_cache_dir), default=None, help="variant cache (default: $XDG_CACHE_HOME/pytest-edgeprof/variants)"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _add_verbose(parser, "building the model and pruning it, or loading it from the cache",
                 "the name, --weights and --data checked")


def _variant_out(text: str) -> Path:
    return output_file(text, "--out", "resnet50-p50.pt")


def _cache_dir(text: str) -> Path:
    return output_folder(text, "--cache-dir", "the pruned-variant cache")


def _check_variant_cache(cache_dir: Path | None) -> None:
    """The variant cache can be written, and its files signed: one line now, not a traceback after pruning."""
    from pytest_edgeprof.cache_integrity import check_cache_folder

    if cache_dir is None:
        check_cache_folder(default_cache_dir(), "the default variant cache", "--cache-dir DIR")
    else:
        check_cache_folder(cache_dir, "--cache-dir")


@subcommand("prune", "Prune a model to remove a fraction of its FLOPs (structured, torch-pruning)", _configure_prune)
def run_prune(args: argparse.Namespace) -> int:
    clock = Clock()
    clock.imports("pytest_edgeprof.models.prune.cache", "torch_pruning")
    from pytest_edgeprof.models.prune import PruneUnsupported, pruned_model, save_variant
    from pytest_edgeprof.models.zoo import check_weights, resolve_model_name

    with clock.phase("build"):
        name = resolve_model_name(args.model)
        check_weights(name, args.weights)  # before the progress bar starts
        example_data, data_key = _taylor_data(args, name)
        if not args.no_cache:
            _check_variant_cache(args.cache_dir)
    try:
        with clock.phase("work"):
            result = pruned_model(name, args.target, weights=args.weights, method=args.method, cache_dir=args.cache_dir,
                                  progress=True, example_data=example_data, data_key=data_key,
                                  use_cache=not args.no_cache)
            if args.out is not None:
                save_variant(result, args.out)
    except PruneUnsupported as error:
        print(f"edgeprof: cannot prune {name}: {error}", file=sys.stderr)
        return 1
    row = _prune_row(name, result)
    print(json.dumps({**row, "timings_s": clock.rounded()}) if args.json else _prune_summary(row, args.out))
    clock.report(args)
    return 0


def _prune_row(name: str, result: Any) -> dict[str, Any]:  # result: models.prune.PruneResult
    from pytest_edgeprof.models.prune import variant_name

    return {
        "model": name,
        "variant": variant_name(result.target),
        "target": result.target,
        "achieved": round(result.achieved, 6),
        "method": result.method,
        "params_before": result.params_before,
        "params_after": result.params_after,
        "flops_before": result.flops_before,
        "flops_after": result.flops_after,
        "input_shape": list(result.input_shape),
        "seconds": round(result.seconds, 3),
        "from_cache": result.from_cache,
    }


def _taylor_data(args: argparse.Namespace, name: str) -> tuple[Any, str]:
    if args.method != "taylor":
        if args.data is not None:
            raise UsageError("--data is used by --method taylor only")
        return None, ""
    if args.data is None:
        raise UsageError("--method taylor needs --data DIR, an ImageFolder of labelled images")
    from pytest_edgeprof.models.accuracy import image_folder_loader
    from pytest_edgeprof.models.zoo import reference_input_shape

    loader, eval_set = image_folder_loader(args.data, name, reference_input_shape(name), limit=args.data_limit, option="--data")
    return loader, f"{args.data.resolve()}:{eval_set}"


def _prune_summary(row: dict[str, Any], out: Path | None) -> str:
    shape = "x".join(str(d) for d in row["input_shape"])
    how = "loaded from the cache" if row["from_cache"] else "pruned"
    lines = [
        f"{row['model']} {row['variant']} ({row['method']}): removed {row['achieved']:.2%} of the FLOPs"
        f" (target {row['target']:.0%}) at {shape}",
        f"  FLOPs   {row['flops_before'] / 1e9:.3f} G -> {row['flops_after'] / 1e9:.3f} G",
        f"  params  {row['params_before'] / 1e6:.2f} M -> {row['params_after'] / 1e6:.2f} M",
        f"  time    {row['seconds']:.1f} s ({how})",
    ]
    if out is not None:
        lines.append(f"  saved   {out}")
    return "\n".join(lines)


# --- answers from saved runs: compare, limits, report, layers ------------------------------------

_RUN_HELP = "a saved run: a JSON file, a run number (0001), a name or fragment of one, or latest"


def _add_storage(parser: argparse.ArgumentParser) -> None:
    _add_shared(parser, STORAGE, default=".benchmarks")


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
    parser.add_argument(
        "--configs", metavar="A,B", default=None,
        help="compare one precision and runtime of RUN_A with another of RUN_B (the same file twice for one run), "
        "cell by cell, e.g. fp32-eager,int8-onnxruntime",
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
    from pytest_edgeprof.runs.compare import (
        compare_runs, one_configuration, parse_configs, parse_fail_spec, regressions, render_table, to_csv, to_json,
    )
    from pytest_edgeprof.runs.saved import load_run

    thresholds = parse_fail_spec(args.fail) if args.fail is not None else []  # bad spec: before any file is read
    configs = parse_configs(args.configs) if args.configs is not None else None
    run_a, run_b = load_run(args.run_a, args.storage), load_run(args.run_b, args.storage)
    if configs:
        run_a, run_b = one_configuration(run_a, *configs[0]), one_configuration(run_b, *configs[1])
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
        "--objective", choices=tuple(OBJECTIVES), default="throughput",
        help="what the recommended configuration is best at, among the cells within every budget (default: throughput)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    _add_storage(parser)


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


def _configure_emulate_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ref", metavar="RUN", help=f"a run made with --emulate (host to check the model): {_RUN_HELP}")
    parser.add_argument("--json", action="store_true", help="print JSON")
    _add_storage(parser)


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


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ref", metavar="RUN", help=_RUN_HELP)
    parser.add_argument("--out", type=_typed(_report_folder), default="edgeprof-report", metavar="DIR",
                        help="where to write the PNGs and index.html (default: edgeprof-report)")
    _add_storage(parser)


def _report_folder(text: str) -> Path:
    return output_folder(text, "--out", "the report's PNGs and index.html")


@subcommand("report", "PNG plots per model and an index.html from a saved run", _configure_report)
def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pytest_edgeprof.runs.report import write_report
    from pytest_edgeprof.runs.saved import load_run

    run = load_run(args.run_ref, args.storage)
    written = write_report(run, Path(args.out))
    for path in written:
        print(path)
    return 0


def _positive_int(text: str) -> int:
    if not (text.strip().isascii() and text.strip().isdigit()) or int(text) < 1:  # str.isdigit alone takes '²'
        raise UsageError(f"bad count {text!r}: expected a positive integer")
    return int(text)


def _configure_layers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a torchvision classification model name")
    _add_shared(parser, SHAPE, type=_typed(parse_shape), default=None, shown="the model's own size, 224 for most")
    parser.add_argument("--batch", type=_typed(parse_batch_size), default=1, help="batch size (default: 1)")
    _add_shared(parser, DEVICE, default="cpu")
    _add_variant(parser)
    parser.add_argument("--top", type=_typed(_positive_int), default=None, metavar="N", help="show only the N costliest layers")
    parser.add_argument("--sort", choices=("latency", "flops", "params", "activations"), default="latency",
                        help="what 'costliest' means (default: latency, the measured time)")
    parser.add_argument("--runs", type=_typed(_positive_int), default=10, help="timed runs after the warm-up (default: 10)")
    parser.add_argument("--plot", metavar="FILE", type=_typed(_plot_file), default=None,
                        help="also draw a bar chart of the top layers (PNG)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    _add_verbose(parser, "the timed runs and the plot")


def _plot_file(text: str) -> str:
    """--plot FILE: a writable path whose suffix matplotlib can write (checked before profiling)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(text).suffix.lower().lstrip(".")
    if suffix and suffix not in formats:
        raise UsageError(f"--plot {text}: cannot draw a .{suffix} file; accepted suffixes: {', '.join(sorted(formats))}")
    output_file(text, "--plot", "layers.png")
    return text


@subcommand("layers", "per layer: FLOPs, parameters, output activations and measured share of the time", _configure_layers)
def run_layers(args: argparse.Namespace) -> int:
    clock = Clock()
    clock.imports(*_model_modules(args), "pytest_edgeprof.runs.layers", *(["matplotlib.figure"] if args.plot else []))
    from pytest_edgeprof.models.prune import PruneUnsupported
    from pytest_edgeprof.outcome import is_out_of_memory
    from pytest_edgeprof.runs import layers

    try:
        with clock.phase("build"):
            ref, profile_device, shape = _model_on_device(args)
            model = ref.build(profile_device.torch_device, progress=True).model
    except PruneUnsupported as error:
        print(f"edgeprof: cannot prune {ref.name}: {error}", file=sys.stderr)
        return 1
    try:
        with clock.phase("work"):
            profile = layers.profile_layers(model, shape, args.batch, profile_device.torch_device, args.runs, name=ref.name)
            if args.plot:
                layers.plot(profile, args.plot, args.top or 20, args.sort)
    except Exception as error:  # a batch too large for the device is an answer, said in one line
        if not is_out_of_memory(error):
            raise
        print(f"edgeprof: {ref.name} at batch {args.batch}, {shape[1]}x{shape[2]} ran out of memory on "
              f"{profile_device.name}: {first_line(error, limit=300)}", file=sys.stderr)
        return 1
    if args.json:
        print(layers.to_json(profile, args.top, args.sort, extra={"timings_s": clock.rounded()}))
    else:
        print(layers.render(profile, args.top, args.sort))
    if args.plot:
        print(f"plot: {args.plot}", file=sys.stderr)
    clock.report(args)
    return 0


def _model_modules(args: argparse.Namespace) -> list[str]:
    """What building MODEL --variant imports: torch, torchvision, and torch-pruning for a pruned variant."""
    pruned = ["pytest_edgeprof.models.prune.cache", "torch_pruning"] if args.variant != "base" else []
    return ["pytest_edgeprof.measure.flops", "pytest_edgeprof.models.variants", *pruned]


def _add_variant(parser: argparse.ArgumentParser) -> None:
    from pytest_edgeprof.models.prune import variant_target

    _add_shared(parser, VARIANT, type=_typed(_checked(variant_target)), default="base")
    _add_shared(parser, WEIGHTS, default=None, shown="random")


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """A parser that keeps the text once ``check`` accepts it."""

    def parse(text: str) -> str:
        check(text)
        return text

    return parse


def _model_on_device(args: argparse.Namespace):  # -> (variants.ModelRef, DeviceProfile, shape)
    """MODEL, --weights, --variant, --device and --shape (default: the model's own size), checked before
    anything is built or run: the weights can be found, and the model takes the shape (on meta tensors)."""
    from pytest_edgeprof.device import resolve_device
    from pytest_edgeprof.measure.flops import check_model_input
    from pytest_edgeprof.models.variants import ModelRef
    from pytest_edgeprof.models.zoo import check_weights, reference_input_shape, resolve_model_name

    name = resolve_model_name(args.model)
    check_weights(name, args.weights)
    shape = args.shape or reference_input_shape(name)
    check_model_input(name, shape)
    profile = resolve_device(args.device)
    return ModelRef(name, args.weights, args.variant), profile, shape


# --- edgeprof capacity -----------------------------------------------------------------------------


def _configure_capacity(parser: argparse.ArgumentParser) -> None:
    from pytest_edgeprof.metrics import parse_bytes

    parser.add_argument("model", metavar="MODEL", help="a torchvision classification model name")
    _add_shared(parser, SHAPE, type=_typed(parse_shape), default=None, shown="the model's own size, 224 for most")
    parser.add_argument("--memory", type=_typed(parse_bytes), required=True,
                        help="the memory budget, e.g. 2.6GB (2.6e9 bytes) or 2.6GiB")
    _add_shared(parser, DEVICE, default="auto")
    _add_variant(parser)
    parser.add_argument("--json", action="store_true", help="print JSON: the probes and the answer")
    _add_verbose(parser, "the isolated probes, each a process that imports torch")


@subcommand("capacity", "the largest batch that fits a memory budget, found by measuring isolated probes", _configure_capacity)
def run_capacity(args: argparse.Namespace) -> int:
    clock = Clock()
    clock.imports(*_model_modules(args), "pytest_edgeprof.runs.capacity")
    from pytest_edgeprof.models.prune import PruneUnsupported
    from pytest_edgeprof.runs.capacity import find_capacity

    with clock.phase("build"):
        ref, profile, shape = _model_on_device(args)
        if ref.variant != "base":  # pruned (or found in the cache) once here; each probe loads it from the cache
            try:
                ref.build("cpu", progress=not args.json)
            except PruneUnsupported as error:
                print(f"edgeprof: cannot prune {ref.name}: {error}", file=sys.stderr)
                return 1
    if not args.json:
        print(f"{ref.name} {args.variant} at {shape[1]}x{shape[2]} on {profile.name}: largest batch within {args.memory:,} bytes")
    with clock.phase("work"):
        report = find_capacity(ref, shape, profile, args.memory, on_probe=None if args.json else lambda p: print(p.line()))
    print(report.to_json(extra={"timings_s": clock.rounded()}) if args.json else report.summary())
    clock.report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``edgeprof layers``: per layer FLOPs, parameters, activations and measured share of the time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_edgeprof.cli.clock import Clock
from pytest_edgeprof.cli.models import model_modules, model_on_device
from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import add_shared, add_variant, add_verbose, positive_int, typed
from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.paths import output_file
from pytest_edgeprof.shared_options import DEVICE, SHAPE, parse_batch_size, parse_shape, size_text


def _configure_layers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a torchvision classification model name")
    add_shared(parser, SHAPE, type=typed(parse_shape), default=None, shown="the model's own size, 224 for most")
    parser.add_argument("--batch", type=typed(parse_batch_size), default=1, help="batch size (default: 1)")
    add_shared(parser, DEVICE, default="cpu")
    add_variant(parser)
    parser.add_argument("--top", type=typed(positive_int), default=None, metavar="N", help="show only the N costliest layers")
    parser.add_argument("--sort", choices=("latency", "flops", "params", "activations"), default="latency",
                        help="what 'costliest' means (default: latency, the measured time)")
    parser.add_argument("--runs", type=typed(positive_int), default=10, help="timed runs after the warm-up (default: 10)")
    parser.add_argument("--plot", metavar="FILE", type=typed(_plot_file), default=None,
                        help="also draw a bar chart of the top layers (PNG)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_verbose(parser, "the timed runs and the plot")


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
    clock.imports(*model_modules(args), "pytest_edgeprof.runs.layers", *(["matplotlib.figure"] if args.plot else []))
    from pytest_edgeprof.models.prune import PruneUnsupported
    from pytest_edgeprof.outcome import is_out_of_memory
    from pytest_edgeprof.runs import layers

    try:
        with clock.phase("build"):
            ref, profile_device, shape = model_on_device(args)
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
        print(f"edgeprof: {ref.name} at batch {args.batch}, {size_text(shape)} ran out of memory on "
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

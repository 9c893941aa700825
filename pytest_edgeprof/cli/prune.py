"""``edgeprof prune``: a model pruned to remove a fraction of its FLOPs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pytest_edgeprof.cli.clock import Clock
from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import add_shared, add_verbose, positive_int, typed
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.paths import default_cache_dir, output_file, output_folder
from pytest_edgeprof.shared_options import WEIGHTS, shape_text


def _configure_prune(parser: argparse.ArgumentParser) -> None:
    from pytest_edgeprof.models.prune import METHODS, parse_prune_target

    parser.add_argument("model", metavar="MODEL", help="a torchvision classification model name")
    parser.add_argument(
        "--target", type=typed(parse_prune_target), required=True, help="fraction of FLOPs to remove, 0.05 to 0.8"
    )
    parser.add_argument("--method", choices=METHODS, default="magnitude", help="channel importance")
    add_shared(parser, WEIGHTS, default=None, shown="random")
    parser.add_argument("--data", type=Path, default=None, help="an ImageFolder for Taylor importance")
    parser.add_argument("--data-limit", type=typed(positive_int), default=256, help="images of --data (256)")
    parser.add_argument("--out", type=typed(_variant_out), default=None, help="also write the variant to FILE (load_variant reads it)")
    parser.add_argument(
        "--cache-dir", type=typed(_cache_dir), default=None, help="variant cache (default: $XDG_CACHE_HOME/pytest-edgeprof/variants)"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_verbose(parser, "building the model and pruning it, or loading it from the cache",
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
    shape = shape_text(row["input_shape"])
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

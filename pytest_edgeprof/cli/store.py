"""``edgeprof store import RUN...``: saved runs added to the results store (each once, however often imported)."""

from __future__ import annotations

import argparse

from pytest_edgeprof.cli.registry import subcommand
from pytest_edgeprof.cli.shared_options import RUN_HELP, add_storage
from pytest_edgeprof.cli.store_options import add_store, open_from_args


def _configure_store(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imports = actions.add_parser("import", help="add saved runs to the store", description="add saved runs to the store")
    imports.add_argument("runs", metavar="RUN", nargs="+", help=RUN_HELP)
    imports.add_argument("--machine", metavar="NAME", default=None,
                         help="the machine the runs are stored under (default: each run's board, GPU or CPU)")
    add_store(imports)
    add_storage(imports)


@subcommand("store", "the results store: store import RUN... adds saved runs to it", _configure_store)
def run_store(args: argparse.Namespace) -> int:
    from pytest_edgeprof.compat.pytest_benchmark import storage_folder
    from pytest_edgeprof.runs.saved import parse_run, read_document, resolve_run_path

    paths = [resolve_run_path(ref, storage_folder(args.storage)) for ref in args.runs]
    documents = [(path, read_document(path)) for path in paths]
    for path, document in documents:  # every run checked before any is stored
        parse_run(path, document)
    with open_from_args(args) as store:
        for path, document in documents:
            run_id, added = store.add(document, args.machine, source=str(path))
            state = "stored" if added else "already stored"
            print(f"{path}: {state} as store:{run_id}")
    return 0

"""The options of the commands that read or write the results store: ``--store URL`` (else
``$EDGEPROF_STORE``), and a run reference that may be ``store:ID`` (``edgeprof compare``)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from pytest_edgeprof.cli.shared_options import typed
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.runs.store.url import ACCEPTED, ENV_VAR, StoreUrl, parse_store_url

if TYPE_CHECKING:
    from pytest_edgeprof.runs.saved import SavedRun
    from pytest_edgeprof.runs.store.store import Store

STORE_REF = "store:ID, a run of the results store (--store)"


def add_store(parser: argparse.ArgumentParser, what: str = "the results store") -> None:
    parser.add_argument("--store", metavar="URL", type=typed(parse_store_url), default=None,
                        help=f"{what}: {ACCEPTED} (default: ${ENV_VAR})")


def store_url(args: argparse.Namespace) -> StoreUrl:
    """``--store``, else ``$EDGEPROF_STORE``; a UsageError where neither is given."""
    if args.store is not None:
        return args.store
    text = os.environ.get(ENV_VAR)
    if not text:
        raise UsageError(f"no results store: give --store URL or set {ENV_VAR} ({ACCEPTED})")
    try:
        return parse_store_url(text)
    except UsageError as exc:
        raise UsageError(f"{ENV_VAR}: {exc}") from None


def open_from_args(args: argparse.Namespace) -> Store:
    from pytest_edgeprof.runs.store.store import open_store

    return open_store(store_url(args))


def load_ref(ref: str, args: argparse.Namespace) -> SavedRun:
    """A saved run as ``edgeprof compare`` names it: ``store:ID`` from the store, else a file or saved run."""
    from pytest_edgeprof.runs.saved import load_run
    from pytest_edgeprof.runs.store.records import REF_PREFIX

    if not ref.startswith(REF_PREFIX):
        return load_run(ref, args.storage)
    with open_from_args(args) as store:
        return store.load(ref)

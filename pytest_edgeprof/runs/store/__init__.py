"""The results store (``--edgeprof-store URL``, ``edgeprof store import``, ``history``, ``check``).

- ``url.py``      the accepted URLs, checked without SQLAlchemy
- ``schema.py``   the tables (SQLAlchemy Core), the same on SQLite and PostgreSQL
- ``records.py``  StoredRun and Point, what reading gives back; a run's default machine name
- ``store.py``    open_store() and Store: writing a run once, reading runs, a run and series
- ``check.py``    the regression check: the latest run of each machine against its previous runs

Importing this package imports nothing more; ``open_store`` imports SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

_WHERE = {"REF_PREFIX": "records", "Point": "records", "StoredRun": "records",
          "Store": "store", "StoreError": "store", "open_store": "store", "StoreUrl": "url", "parse_store_url": "url"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """The names above, each imported from its module on first use (``edgeprof --help`` imports none)."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)

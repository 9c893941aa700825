"""The results store: runs written whole and indexed, read back as SavedRuns, series per metric.

``open_store(url)`` connects (SQLite file or PostgreSQL through psycopg 3) and creates the tables where
missing. Every write is one transaction: a run and its values appear together or not at all, and the
run's digest is unique, so concurrent writers store each run exactly once. SQLAlchemy is imported here
only; without it ``open_store`` is one UsageError naming the extra to install.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.metrics import METRICS
from pytest_edgeprof.runs.saved import SavedRun, parse_run
from pytest_edgeprof.runs.store.records import REF_PREFIX, Point, StoredRun
from pytest_edgeprof.runs.store.url import EXTRA_HINT, StoreUrl, parse_store_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class StoreError(UsageError):
    """A store that cannot be reached, created or written: one line naming it and why."""


def open_store(url: str | StoreUrl) -> Store:
    """The store at ``url`` (``sqlite:///PATH`` or ``postgresql://...``), its tables created where missing."""
    parsed = url if isinstance(url, StoreUrl) else parse_store_url(url)
    try:
        import sqlalchemy
    except ImportError:
        raise UsageError(f"--edgeprof-store needs SQLAlchemy: {EXTRA_HINT}") from None
    if parsed.dialect == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise UsageError("a postgresql:// store needs psycopg 3: pip install 'pytest-edgeprof[postgresql]'") from None
    if parsed.path is not None and parsed.path.parent != Path() and not parsed.path.parent.is_dir():
        raise StoreError(f"store {parsed.shown}: no folder {parsed.path.parent} for its file")
    connect_args = {"timeout": 60} if parsed.dialect == "sqlite" else {"connect_timeout": 10}
    engine = sqlalchemy.create_engine(parsed.sqlalchemy, connect_args=connect_args)
    store = Store(parsed, engine)
    store.create_tables()
    return store


def digest(document: Mapping[str, Any]) -> str:
    """The SHA-256 of a run's canonical JSON: the same run gives the same digest wherever it was read."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Store:
    def __init__(self, url: StoreUrl, engine: Engine) -> None:
        self.url = url
        self.engine = engine

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def _failed(self, doing: str, exc: Exception) -> StoreError:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StoreError(f"store {self.url.shown}: cannot {doing}: {reason}")

    def create_tables(self) -> None:
        """Create the tables where missing; several processes may do it at once (a lost race is retried)."""
        from sqlalchemy.exc import SQLAlchemyError

        from pytest_edgeprof.runs.store.schema import metadata

        for attempt in range(5):
            try:
                with self.engine.begin() as connection:
                    metadata.create_all(connection)
                return
            except SQLAlchemyError as exc:
                if attempt == 4 or "already exists" not in str(exc) and "duplicate key" not in str(exc):
                    raise self._failed("connect and create its tables", exc) from None
                time.sleep(0.05 * (attempt + 1))

    # --- writing ---------------------------------------------------------------------------------

    def add(self, document: Mapping[str, Any], machine: str | None = None, source: str = "run") -> tuple[int, bool]:
        """Store a run (pytest-benchmark's JSON document) under ``machine`` (default: from its machine info);
        return its id and whether it was new (False: the same run was stored before, by anyone)."""
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError, SQLAlchemyError

        from pytest_edgeprof.runs.store.schema import runs, values

        saved = parse_run(Path(source), document)  # UsageError where it is no edgeprof run
        key = digest(document)
        row = _run_row(saved, document, key, machine or saved.machine)
        try:
            with self.engine.begin() as connection:
                run_id = connection.execute(insert(runs).values(**row).returning(runs.c.id)).scalar_one()
                rows = list(_value_rows(saved, run_id, row["machine"]))
                if rows:
                    connection.execute(insert(values), rows)
            return int(run_id), True
        except IntegrityError:
            with self.engine.connect() as connection:
                found = connection.execute(select(runs.c.id).where(runs.c.digest == key)).scalar_one_or_none()
            if found is None:
                raise
            return int(found), False
        except SQLAlchemyError as exc:
            raise self._failed("write the run", exc) from None

    # --- reading ---------------------------------------------------------------------------------

    def runs(self, machine: str | None = None) -> list[StoredRun]:
        """Every stored run (of ``machine`` where given), oldest first."""
        from sqlalchemy import select

        from pytest_edgeprof.runs.store.schema import runs

        query = select(runs.c.id, runs.c.machine, runs.c.commit_id, runs.c.branch, runs.c.saved_at, runs.c.document)
        if machine is not None:
            query = query.where(runs.c.machine == machine)
        with self._reading("read its runs") as connection:
            rows = connection.execute(query.order_by(runs.c.saved_at, runs.c.id)).all()
        return [StoredRun(int(r.id), r.machine, r.commit_id, r.branch, r.saved_at, r.document) for r in rows]

    def load(self, run_id: int | str) -> SavedRun:
        """The stored run ``run_id`` (``12`` or ``store:12``) as a SavedRun; UsageError where there is none."""
        from sqlalchemy import select

        from pytest_edgeprof.runs.store.schema import runs

        number = _run_number(run_id)
        with self._reading("read a run") as connection:
            document = connection.execute(select(runs.c.document).where(runs.c.id == number)).scalar_one_or_none()
        if document is None:
            raise UsageError(f"no run {REF_PREFIX}{number} in store {self.url.shown}; edgeprof history lists its runs")
        return parse_run(Path(f"{REF_PREFIX}{number}"), json.loads(document))

    def machines(self) -> list[str]:
        from sqlalchemy import select

        from pytest_edgeprof.runs.store.schema import runs

        with self._reading("read its machines") as connection:
            return list(connection.execute(select(runs.c.machine).distinct().order_by(runs.c.machine)).scalars())

    def series(self, machine: str, cell: str, metric: str) -> list[Point]:
        """One cell's metric over a machine's runs, oldest first."""
        return self.history(machine=machine, cell=cell, metric=metric)

    def history(self, machine: str | None = None, cell: str | None = None, metric: str | None = None,
                run_ids: Iterable[int] | None = None) -> list[Point]:
        """Every stored value matching the filters, by machine, cell, metric, then oldest run first."""
        from sqlalchemy import select

        from pytest_edgeprof.runs.store.schema import runs, values

        query = (select(values.c.run_id, values.c.machine, values.c.cell, values.c.metric, values.c.value,
                        runs.c.saved_at, runs.c.commit_id, runs.c.branch)
                 .join(runs, runs.c.id == values.c.run_id))
        for column, wanted in ((values.c.machine, machine), (values.c.cell, cell), (values.c.metric, metric)):
            if wanted is not None:
                query = query.where(column == wanted)
        if run_ids is not None:
            query = query.where(values.c.run_id.in_(list(run_ids)))
        query = query.order_by(values.c.machine, values.c.cell, values.c.metric, runs.c.saved_at, values.c.run_id)
        with self._reading("read its history") as connection:
            return [Point(int(r.run_id), r.machine, r.cell, r.metric, float(r.value), r.saved_at, r.commit_id, r.branch)
                    for r in connection.execute(query)]

    def run_ids(self, machine: str, branch: str | None = None) -> list[int]:
        """A machine's run ids (on ``branch`` where given), oldest first."""
        from sqlalchemy import select

        from pytest_edgeprof.runs.store.schema import runs

        query = select(runs.c.id).where(runs.c.machine == machine)
        if branch is not None:
            query = query.where(runs.c.branch == branch)
        with self._reading("read its runs") as connection:
            return [int(i) for i in connection.execute(query.order_by(runs.c.saved_at, runs.c.id)).scalars()]

    def _reading(self, doing: str) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        store = self

        class _Reading:
            def __enter__(self) -> Any:
                try:
                    self.connection = store.engine.connect()
                except SQLAlchemyError as exc:
                    raise store._failed(doing, exc) from None
                return self.connection

            def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
                self.connection.close()
                if isinstance(exc, SQLAlchemyError):
                    raise store._failed(doing, exc) from None

        return _Reading()


def _run_number(run_id: int | str) -> int:
    text = str(run_id).removeprefix(REF_PREFIX)
    if not (text.isascii() and text.isdigit()) or int(text) > 2**62:
        raise UsageError(f"bad stored run {str(run_id)!r}: expected {REF_PREFIX}ID, a run's number, e.g. {REF_PREFIX}12")
    return int(text)


def _run_row(saved: SavedRun, document: Mapping[str, Any], key: str, machine: str) -> dict[str, Any]:
    commit = saved.commit_info
    dirty = commit.get("dirty")
    return {
        "digest": key,
        "machine": machine[:200],
        "commit_id": str(commit.get("id") or "")[:64],
        "branch": str(commit.get("branch") or "")[:200],
        "dirty": dirty if isinstance(dirty, bool) else None,
        "saved_at": saved.datetime[:40],
        "stored_at": datetime.now(timezone.utc).isoformat(),
        "cells": len(saved.cells),
        "document": json.dumps(document),
    }


def _value_rows(saved: SavedRun, run_id: int, machine: str) -> Iterable[dict[str, Any]]:
    for cell_id, cell in saved.cells.items():
        for metric in METRICS.values():
            value = cell.value(metric)
            if value is not None:
                yield {"run_id": run_id, "machine": machine[:200], "cell": cell_id[:300], "metric": metric.name, "value": value}

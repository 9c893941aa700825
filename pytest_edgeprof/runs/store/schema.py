"""The store's tables, the same on SQLite and PostgreSQL (SQLAlchemy Core).

- ``edgeprof_runs``: one row per run: its machine, commit, branch, when pytest-benchmark saved it, and the
  whole pytest-benchmark JSON document (so a stored run reads back exactly as saved). ``digest``, the
  SHA-256 of the document's canonical JSON, is unique: the same run stored twice, by two processes at
  once or by an import of a file already stored, is one row.
- ``edgeprof_values``: per run, cell and metric its value, for history and the regression check;
  indexed by machine, cell and metric so a series is one index range.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 1

metadata = MetaData()

runs = Table(
    "edgeprof_runs", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("machine", String(200), nullable=False, index=True),
    Column("commit_id", String(64), nullable=False, default=""),
    Column("branch", String(200), nullable=False, default=""),
    Column("dirty", Boolean, nullable=True),
    Column("saved_at", String(40), nullable=False, default=""),  # ISO 8601 as pytest-benchmark wrote it (UTC)
    Column("stored_at", String(40), nullable=False),
    Column("cells", Integer, nullable=False),
    Column("document", Text, nullable=False),  # the pytest-benchmark JSON, as saved
)

values = Table(
    "edgeprof_values", metadata,
    Column("run_id", ForeignKey("edgeprof_runs.id", ondelete="CASCADE"), nullable=False),
    Column("machine", String(200), nullable=False),  # the run's, repeated so a series needs no join to filter
    Column("cell", String(300), nullable=False),
    Column("metric", String(40), nullable=False),
    Column("value", Float, nullable=False),
)

Index("edgeprof_values_series", values.c.machine, values.c.cell, values.c.metric, values.c.run_id)
Index("edgeprof_values_run", values.c.run_id)

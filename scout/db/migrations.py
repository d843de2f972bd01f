"""A small versioned migration runner: each migration runs once, in order, in one transaction with its
row in `scout_schema`. Two processes opening a new store at once take turns (an advisory lock on
PostgreSQL; on SQLite every transaction begins IMMEDIATE: see engine.py), so the second finds the work done.

Add a migration: append (version, function) to MIGRATIONS; never edit one that has shipped.
"""
from __future__ import annotations

from sqlalchemy import inspect, select, text

from scout.db import schema

# an arbitrary constant: the advisory lock id of this runner on PostgreSQL
_LOCK_ID = 172_017


def _v1_tables(conn) -> None:
    schema.metadata.create_all(conn, tables=[schema.domains, schema.documents, schema.addresses,
                                               schema.nameservers])


def _v2_substring_indexes(conn) -> None:
    """Substring searches (registrar, domain globs with a leading *) use trigram indexes on PostgreSQL;
    SQLite scans (fine at the sizes an embedded store sees)."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_domains_registrar_trgm "
                      "ON domains USING gin (lower(registrar) gin_trgm_ops)"))
    # On lower(domain), not domain: a trigram index on the column itself also serves `domain = ANY(...)`,
    # and the planner took it for the upserts' lookups by name (100x slower than the primary key).
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_domains_domain_trgm "
                      "ON domains USING gin (lower(domain) gin_trgm_ops)"))


MIGRATIONS = [(1, _v1_tables), (2, _v2_substring_indexes)]
LATEST = MIGRATIONS[-1][0]


def current_version(conn) -> int:
    if not inspect(conn).has_table("scout_schema"):
        return 0
    return conn.execute(select(schema.schema_version.c.version).order_by(
        schema.schema_version.c.version.desc()).limit(1)).scalar() or 0


def migrate(engine) -> int:
    """Bring the store to the latest version. -> the version it was at."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        schema.metadata.create_all(conn, tables=[schema.schema_version])
        before = current_version(conn)
        for version, step in MIGRATIONS:
            if version > before:
                step(conn)
                conn.execute(schema.schema_version.insert().values(version=version, applied=schema.utcnow()))
    return before

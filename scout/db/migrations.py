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


FTS_TABLE = "domains_fts"
_FTS_TRIGGERS = (
    f"CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON domains BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, domain, registrar) VALUES (new.rowid, new.domain, new.registrar); END",
    f"CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON domains BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, domain, registrar) "
    f"VALUES ('delete', old.rowid, old.domain, old.registrar); END",
    f"CREATE TRIGGER {FTS_TABLE}_au AFTER UPDATE OF domain, registrar ON domains BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, domain, registrar) "
    f"VALUES ('delete', old.rowid, old.domain, old.registrar); "
    f"INSERT INTO {FTS_TABLE}(rowid, domain, registrar) VALUES (new.rowid, new.domain, new.registrar); END",
)


def _v3_sqlite_trigram_index(conn) -> None:
    """SQLite: the same substring searches through an FTS5 trigram index (SQLite >= 3.34 answers LIKE
    from it) kept by triggers; without FTS5 in this SQLite, LIKE scans as before. Its rows follow the
    domains' rowids: after a VACUUM, `INSERT INTO domains_fts(domains_fts) VALUES('rebuild')`."""
    if conn.dialect.name != "sqlite":
        return
    try:
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(domain, registrar, content='domains', "
                             "content_rowid='rowid', tokenize='trigram')")
    except Exception:  # noqa: BLE001 -- no FTS5 (or no trigram tokenizer) in this build of SQLite
        return
    for trigger in _FTS_TRIGGERS:
        conn.exec_driver_sql(trigger)
    conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES('rebuild')")


def fill_registrars(conn) -> None:
    """`registrars` from the rows (migration 4; a bulk load that bypasses the upserts calls it too)."""
    conn.execute(text("INSERT INTO registrars (name) SELECT DISTINCT registrar FROM domains "
                      "WHERE registrar IS NOT NULL ON CONFLICT (name) DO NOTHING"))


def _v4_narrow_lookups(conn) -> None:
    """The two filters that read too many `domains` rows on a million (PostgreSQL p95: an address range
    of 4,000 domains 70 ms, a rare registrar substring 90 ms): each address row carries its domain's
    first_seen, indexed after the address, so a range sorts index entries and reads one page of
    domains; registrar names get a table of their own (a substring is matched against the names, then
    `registrar IN (names)` on a B-tree), which replaces the registrar's trigram index (the upserts'
    dearest index after the domain's). Idempotent: a store created at version 1 from today's schema
    already has the new column and indexes."""
    if "first_seen" not in {c["name"] for c in inspect(conn).get_columns("addresses")}:
        kind = schema.addresses.c.first_seen.type.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE addresses ADD COLUMN first_seen {kind}"))
    conn.execute(text("UPDATE addresses SET first_seen = (SELECT first_seen FROM domains "
                      "WHERE domains.domain = addresses.domain)"))
    conn.execute(text("DROP INDEX IF EXISTS ix_addresses_ip_key"))
    schema.metadata.create_all(conn, tables=[schema.registrars])
    for index in (*schema.addresses.indexes, *schema.domains.indexes):
        index.create(conn, checkfirst=True)
    fill_registrars(conn)
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP INDEX IF EXISTS ix_domains_registrar_trgm"))


MIGRATIONS = [(1, _v1_tables), (2, _v2_substring_indexes), (3, _v3_sqlite_trigram_index), (4, _v4_narrow_lookups)]
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

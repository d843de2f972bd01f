"""The write side: a batch of documents in one transaction, updates of stored documents, and pruning.

Writers of the same domain take turns: on PostgreSQL each transaction first takes a transaction-scoped
advisory lock per domain, in one sorted order (no deadlock between two batches that share domains); on
SQLite every transaction begins IMMEDIATE (one writer at a time). Under that lock a batch reads the rows
it changes, merges in Python with the caller's rule, and writes rows and child rows back.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from scout.db.engine import SqlStore, pg_json_dumps
from scout.db.rows import address_rows, domain_row, nameserver_rows
from scout.db.schema import addresses, documents, domains, nameservers

Merge = Callable[[dict | None, dict], dict | None]

# An offset-0 subquery keeps its order: the locks are taken in it.
_PG_LOCKS = text("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT hashtextextended(d, 17) AS k "
                 "FROM unnest(CAST(:ds AS text[])) AS d ORDER BY k OFFSET 0) AS s")
_CHUNK = 500   # domains per IN (...) list: well under SQLite's bound-parameter limit


def replace(old: dict | None, new: dict) -> dict:
    """The merge when the document files are the truth: the file's document as it is."""
    return new


def merge_imported(old: dict | None, new: dict) -> dict:
    """`scout import`: a file's document against the row (idempotent): the later sighting's document,
    the earliest first_seen, the larger seen_count."""
    if old is None:
        return new
    key = (lambda d: (d.get("last_seen") or "", d.get("seen_count") or 0, d.get("timestamp") or ""))
    out = dict(new if key(new) >= key(old) else old)
    firsts = [d.get("first_seen") for d in (old, new) if d.get("first_seen")]
    if firsts:
        out["first_seen"] = min(firsts)
    counts = [d.get("seen_count") for d in (old, new) if isinstance(d.get("seen_count"), int)]
    if counts:
        out["seen_count"] = max(counts)
    return {k: out[k] for k in new if k in out} | {k: v for k, v in out.items() if k not in new}


def _chunks(items: list, n: int = _CHUNK):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _children(doc: dict | None) -> tuple:
    return (address_rows(doc), nameserver_rows(doc)) if doc is not None else ([], [])


def _pg_insert_sql(conn, table, rows: list[dict], upsert: bool) -> tuple[str, list]:
    """PostgreSQL: all rows in one INSERT, one array parameter per column through unnest() (an
    executemany sends and binds every row on its own: several times the CPU per document)."""
    cols = [c.name for c in table.c]
    types = {c.name: ("text" if c.name == "document" else c.type.compile(dialect=conn.dialect)) for c in table.c}
    select_list = ", ".join(f"{c}::jsonb" if c == "document" else c for c in cols)
    sql = (f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {select_list} FROM unnest("
           + ", ".join(f"%b::{types[c]}[]" for c in cols) + f") AS t({', '.join(cols)})")
    if upsert:
        sql += (f" ON CONFLICT ({table.primary_key.columns.keys()[0]}) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "domain"))
    params = [[pg_json_dumps(r[c]) for r in rows] if c == "document" else [r[c] for r in rows] for c in cols]
    return sql, params


def _pg_insert_all(conn, writes: list[tuple]) -> None:
    """Every table's INSERT in one statement (data-modifying WITH clauses: one round trip, not four).
    %b: binary parameters, so text arrays of JSON are not escaped element by element. The driver's
    cursor: the same connection, so the same transaction."""
    parts = [_pg_insert_sql(conn, table, rows, upsert) for table, rows, upsert in writes if rows]
    if not parts:
        return
    sql = parts[-1][0]
    if len(parts) > 1:
        sql = "WITH " + ", ".join(f"w{k} AS ({p[0]})" for k, p in enumerate(parts[:-1])) + " " + sql
    conn.connection.driver_connection.cursor().execute(sql, [x for p in parts for x in p[1]])


def _write_rows(conn, table, rows: list[dict], upsert: bool = False) -> None:
    """SQLite: executemany (sqlite3's is in C), an upsert by its primary key."""
    if not rows:
        return
    if upsert:
        ins = sqlite_insert(table)
        conn.execute(ins.on_conflict_do_update(
            index_elements=["domain"], set_={c.name: ins.excluded[c.name] for c in table.c if c.name != "domain"}),
            rows)
    else:
        conn.execute(table.insert(), rows)


def _write(conn, docs: list[dict], old: dict[str, dict]) -> None:
    """Rows for `docs`; child rows only where they changed (a re-sighting on the same addresses and
    name servers touches the domain row alone)."""
    changed, new_children = [], ([], [])
    for d in docs:
        mine, before = _children(d), _children(old.get(d["domain"]))
        if mine != before:
            if d["domain"] in old:
                changed.append(d["domain"])
            new_children[0].extend(mine[0])
            new_children[1].extend(mine[1])
    for part in _chunks(changed):   # before the inserts: a child row may come back unchanged
        for table in (addresses, nameservers):
            conn.execute(delete(table).where(table.c.domain.in_(part)))
    writes = [(domains, [domain_row(d) for d in docs], True),
              (documents, [{"domain": d["domain"], "document": d} for d in docs], True),
              (addresses, new_children[0], False), (nameservers, new_children[1], False)]
    if conn.dialect.name == "postgresql":
        _pg_insert_all(conn, writes)
    else:
        for table, rows, upsert in writes:
            _write_rows(conn, table, rows, upsert)


def update_documents(store: SqlStore, keys: Iterable[str],
                     change: Callable[[str, dict | None], dict | None]) -> int:
    """In one transaction: for each domain, change(domain, stored document or None) -> the document to
    store, or None to leave it. -> documents written."""
    keys = sorted(set(keys))
    if not keys:
        return 0
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(_PG_LOCKS, {"ds": keys})
        old = {}
        for part in _chunks(keys):
            old.update(conn.execute(select(documents.c.domain, documents.c.document)
                                    .where(documents.c.domain.in_(part))).tuples().all())
        docs = [new for new in (change(k, old.get(k)) for k in keys) if new is not None]
        if docs:
            _write(conn, docs, old)
    return len(docs)


def upsert_documents(store: SqlStore, docs: list[dict], merge: Merge = replace) -> int:
    """A batch of documents in one transaction, each merged with its stored row by `merge(old, new)`
    (several documents of one domain are merged in their order). -> documents written."""
    by_domain: dict[str, list[dict]] = {}
    for doc in docs:
        by_domain.setdefault(doc["domain"], []).append(doc)

    def change(domain: str, old: dict | None) -> dict | None:
        current = old
        for doc in by_domain[domain]:
            current = merge(current, doc) or current
        return None if current is old or current == old else current   # unchanged: not written

    return update_documents(store, by_domain, change)


def count_prunable(store: SqlStore, cutoff) -> int:
    """How many domains prune_store(store, cutoff) would delete."""
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).where(domains.c.last_seen < cutoff)).scalar_one()


def prune_store(store: SqlStore, cutoff) -> int:
    """Delete every domain last seen before `cutoff` (an aware datetime). -> domains deleted."""
    old = select(domains.c.domain).where(domains.c.last_seen < cutoff)
    with store.engine.begin() as conn:
        for table in (addresses, nameservers, documents):
            conn.execute(delete(table).where(table.c.domain.in_(old)))
        return conn.execute(delete(domains).where(domains.c.last_seen < cutoff)).rowcount

"""The write side: a batch of documents in one transaction, updates of stored documents, and pruning.

Writers of the same domain take turns: on PostgreSQL each transaction first takes a transaction-scoped
advisory lock per domain, in one sorted order (no deadlock between two batches that share domains); on
SQLite every transaction begins IMMEDIATE (one writer at a time). Under that lock a batch reads the rows
it changes, merges in Python with the caller's rule, and writes rows and child rows back.

PostgreSQL batches go through the driver's pipeline mode: the locks and the read travel together, then
the deletes of changed child rows, one statement writing every table and the commit (with the pool's
ping three round trips per batch where SQLAlchemy's transaction took six). A statement that fails skips
the rest of its pipeline, the commit included.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from scout.db.engine import SqlStore, pg_json_dumps
from scout.db.rows import address_rows, domain_row, nameserver_rows
from scout.db.schema import addresses, documents, domains, nameservers, registrars

Merge = Callable[[dict | None, dict], dict | None]

# An offset-0 subquery keeps its order: the locks are taken in it.
_PG_LOCKS = ("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT hashtextextended(d, 17) AS k "
             "FROM unnest(%s::text[]) AS d ORDER BY k OFFSET 0) AS s")
# A statement of its own after the locks: its snapshot sees what the previous holder committed.
_PG_READ = "SELECT domain, document::text FROM documents WHERE domain = ANY(%s::text[])"
_CHUNK = 500   # domains per IN (...) list: well under SQLite's bound-parameter limit
_PG_DIALECT = postgresql.dialect()
UPDATE, NOTHING = "update", "nothing"   # what a write does with a row whose key is already stored


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


def _rows(docs: list[dict], old: dict[str, dict]) -> tuple[list[str], list[tuple]]:
    """-> (stored domains whose child rows are replaced, [(table, rows, on_conflict)]). Child rows only
    where they changed (a re-sighting on the same addresses and name servers touches the domain row
    alone; an address row carries first_seen, so a new first_seen rewrites them)."""
    changed, new_children = [], ([], [])
    for d in docs:
        mine, before = _children(d), _children(old.get(d["domain"]))
        if mine != before:
            if d["domain"] in old:
                changed.append(d["domain"])
            new_children[0].extend(mine[0])
            new_children[1].extend(mine[1])
    rows = [domain_row(d) for d in docs]
    names = sorted({r["registrar"] for r in rows if r["registrar"]})   # sorted: concurrent inserts queue in one order
    return changed, [(domains, rows, UPDATE), (documents, [{"domain": d["domain"], "document": d} for d in docs], UPDATE),
                     (addresses, new_children[0], None), (nameservers, new_children[1], None),
                     (registrars, [{"name": n} for n in names], NOTHING)]


def _pg_insert_sql(table, rows: list[dict], on_conflict: str | None) -> tuple[str, list]:
    """PostgreSQL: all rows of a table in one INSERT, one binary array parameter per column through
    unnest() (an executemany binds every row on its own; rows as one JSON parameter cost the server
    more than the arrays cost the driver, and the server is the busier side)."""
    cols = [c.name for c in table.c]
    key = table.primary_key.columns.keys()[0]
    types = {c.name: ("text" if c.name == "document" else c.type.compile(dialect=_PG_DIALECT)) for c in table.c}
    select_list = ", ".join(f"{c}::jsonb" if c == "document" else c for c in cols)
    sql = (f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {select_list} FROM unnest("
           + ", ".join(f"%b::{types[c]}[]" for c in cols) + f") AS t({', '.join(cols)})")
    if on_conflict == UPDATE:
        sql += (f" ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols if c != key))
    elif on_conflict == NOTHING:
        sql += f" ON CONFLICT ({key}) DO NOTHING"
    params = [[pg_json_dumps(r[c]) for r in rows] if c == "document" else [r[c] for r in rows] for c in cols]
    return sql, params


def _pg_statements(docs: list[dict], old: dict[str, dict]) -> list[tuple[str, list]]:
    """The statements of a batch: deletes of replaced child rows (before the inserts: a child row may
    come back unchanged), then every table's INSERT in one statement (data-modifying WITH clauses)."""
    changed, writes = _rows(docs, old)
    out = [(f"DELETE FROM {t.name} WHERE domain = ANY(%s::text[])", [changed]) for t in (addresses, nameservers)
           if changed]
    parts = [_pg_insert_sql(table, rows, on_conflict) for table, rows, on_conflict in writes if rows]
    sql = parts[-1][0]
    if len(parts) > 1:
        sql = "WITH " + ", ".join(f"w{k} AS ({p[0]})" for k, p in enumerate(parts[:-1])) + " " + sql
    return out + [(sql, [x for p in parts for x in p[1]])]


def _pg_update(store: SqlStore, keys: list[str], change: Callable[[str, dict | None], dict | None]) -> int:
    """update_documents on PostgreSQL, on the driver's connection (pooled by the engine): two pipelines,
    the locks and the read, then the writes and the commit."""
    raw = store.engine.raw_connection()
    try:
        pg = raw.driver_connection
        with pg.pipeline():
            pg.execute(_PG_LOCKS, [keys])
            read = pg.execute(_PG_READ, [keys])
        old = {domain: orjson.loads(doc) for domain, doc in read.fetchall()}
        docs = [new for new in (change(k, old.get(k)) for k in keys) if new is not None]
        with pg.pipeline():
            for sql, params in (_pg_statements(docs, old) if docs else []):
                pg.execute(sql, params)
            pg.commit()
    except BaseException:
        with contextlib.suppress(Exception):   # a broken connection: the pool discards it on close
            raw.rollback()
        raise
    finally:
        raw.close()
    return len(docs)


def _sqlite_write(conn, docs: list[dict], old: dict[str, dict]) -> None:
    """SQLite: executemany (sqlite3's is in C), an upsert by the primary key."""
    changed, writes = _rows(docs, old)
    for part in _chunks(changed):
        for table in (addresses, nameservers):
            conn.execute(delete(table).where(table.c.domain.in_(part)))
    for table, rows, on_conflict in writes:
        if not rows:
            continue
        ins = sqlite_insert(table)
        if on_conflict == UPDATE:
            key = table.primary_key.columns.keys()[0]
            ins = ins.on_conflict_do_update(index_elements=[key],
                                            set_={c.name: ins.excluded[c.name] for c in table.c if c.name != key})
        elif on_conflict == NOTHING:
            ins = ins.on_conflict_do_nothing()
        conn.execute(ins, rows)


def update_documents(store: SqlStore, keys: Iterable[str],
                     change: Callable[[str, dict | None], dict | None]) -> int:
    """In one transaction: for each domain, change(domain, stored document or None) -> the document to
    store, or None to leave it. -> documents written."""
    keys = sorted(set(keys))
    if not keys:
        return 0
    if store.dialect == "postgresql":
        return _pg_update(store, keys, change)
    with store.engine.begin() as conn:
        old = {}
        for part in _chunks(keys):
            old.update(conn.execute(select(documents.c.domain, documents.c.document)
                                    .where(documents.c.domain.in_(part))).tuples().all())
        docs = [new for new in (change(k, old.get(k)) for k in keys) if new is not None]
        if docs:
            _sqlite_write(conn, docs, old)
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

"""Opening a store: STORE_URL -> an engine with the schema migrated.

`sqlite:///PATH` is embedded (the file and its directory are created; WAL so readers never wait for the
writer; every transaction begins IMMEDIATE so two writers queue instead of failing at commit).
`postgresql://user:pass@host/db` uses psycopg 3 (the `+psycopg` driver is added when the URL names none).
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from scout.config import redact_url
from scout.db import migrations


# PostgreSQL's JSONB holds no NUL character (a hostile WHOIS answer may carry one): \u0000 escapes (not
# an escaped backslash followed by "u0000") become U+FFFD.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def json_dumps(obj) -> str:
    return orjson.dumps(obj).decode()


def pg_json_dumps(obj) -> str:
    text = orjson.dumps(obj).decode()
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


class StoreError(RuntimeError):
    """A store that cannot be opened; the message names STORE_URL."""


@dataclass
class SqlStore:
    engine: Engine
    url: str
    fts: bool = False     # SQLite with the trigram index of substring searches (migrations v3)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def _pg_engine(url, fsync: bool) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, json_serializer=pg_json_dumps, json_deserializer=orjson.loads)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        with dbapi_conn.cursor() as cur:
            # The store is read by lookups (a name, an address range's few thousand domains): with the
            # default cost of a random read (4, spinning disks) the planner read all of `domains`
            # instead (0.5 s against 0.09 s for 4,000 domains out of a million).
            cur.execute("SET random_page_cost = 1.1")
            if not fsync:
                # As the document files without SAVE_FSYNC: a commit survives a crash of any process;
                # only the machine going down loses the last fraction of a second. The commit does not
                # wait for the WAL flush (several times the upsert rate on a busy disk).
                cur.execute("SET synchronous_commit = off")
        dbapi_conn.commit()

    return engine


def _sqlite_engine(url) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                           json_serializer=json_dumps, json_deserializer=orjson.loads)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # transactions are ours (BEGIN IMMEDIATE below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, consistent always
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_store(url: str, fsync: bool = True) -> SqlStore:
    """Open (creating and migrating when needed) the store at `url`. fsync=False: PostgreSQL commits
    without waiting for the disk (SAVE_FSYNC=false, as the files). Raises StoreError."""
    expected = "expected sqlite:///PATH or postgresql://user:pass@host/db"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"STORE_URL={redact_url(url)!r}: {expected}") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(parsed)
        elif parsed.get_backend_name() == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine = _pg_engine(parsed, fsync)
        else:
            raise StoreError(f"STORE_URL={redact_url(url)!r}: {expected}")
        migrations.migrate(engine)
        fts = parsed.get_backend_name() == "sqlite" and _has_table(engine, migrations.FTS_TABLE)
    except OperationalError as exc:
        raise StoreError(f"STORE_URL={parsed.render_as_string(hide_password=True)}: cannot open the store: "
                         f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}") from None
    return SqlStore(engine, url, fts)


def _has_table(engine: Engine, name: str) -> bool:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).first() is not None


_shared: dict[tuple, SqlStore] = {}
_shared_lock = threading.Lock()


def shared_store(url: str, fsync: bool = True) -> SqlStore:
    """The process's store at `url`, opened (and migrated) once: what the save stage writes through."""
    with _shared_lock:
        store = _shared.get((url, fsync))
        if store is None:
            store = _shared[(url, fsync)] = open_store(url, fsync)
        return store


def close_shared() -> None:
    with _shared_lock:
        for store in _shared.values():
            store.close()
        _shared.clear()

"""Helpers for the SQL store's tests (tests/db/): a PostgreSQL database of this test run's own on the
server at 127.0.0.1:5432 (created on first use, dropped at the end), SQLite files in tmp_path, and
documents built field by field.

SCOUT_TEST_PG (default postgresql://postgres:postgres@127.0.0.1:5432/postgres) is the maintenance connection
that creates and drops the per-run databases; scripts/setup.sh (DEV=1) installs and starts PostgreSQL.
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import need_service

ADMIN_URL = os.environ.get("SCOUT_TEST_PG", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


def _admin():
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True)


class PgDatabases:
    """Databases created by this test run; each is dropped at close()."""

    def __init__(self):
        self.names: list[str] = []

    def create(self) -> str:
        need_service("PostgreSQL", 5432)
        name = f"scout_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with _admin() as conn:
            if not self.names:
                _drop_orphans(conn)
            conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def close(self) -> None:
        from scout import db

        db.close_shared()   # the save stage's engines hold connections
        if not self.names:
            return
        with _admin() as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.names.clear()


def _drop_orphans(conn) -> None:
    """Databases of test runs whose process is gone (killed before their teardown)."""
    for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'scout\\_test\\_%'").fetchall():
        pid = name.split("_")[2]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_databases():
    dbs = PgDatabases()
    yield dbs
    dbs.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path, pg_databases):
    """An empty store on each engine: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'scout.db'}"
    return pg_databases.create()


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def make_doc(domain: str, root: str, first_seen: datetime, last_seen: datetime | None = None, ips=None,
             ns=(), registrar=None, created=None, status="ok", score=None, issuer="Test CA",
             registered_domain=None) -> dict:
    """A document as the save stage writes it; ips: {address: (asn, network_cidr, country)}."""
    ips = ips or {}
    doc = {
        "domain": domain, "root_domain": root,
        "a_records": [ip for ip in ips if ":" not in ip], "aaaa_records": [ip for ip in ips if ":" in ip],
        "mx_records": [], "txt_records": [], "caa_records": [], "soa_record": "",
        "domain_whois": "", "ip_whois": {ip: "" for ip in ips},
        "timestamp": iso(last_seen or first_seen), "dns_status": {"A": "ok"}, "cname_chain": [],
        "first_seen": iso(first_seen), "last_seen": iso(last_seen or first_seen), "seen_count": 1,
        "certificate": {"sha256": "AB:CD", "issuer": issuer, "not_before": iso(first_seen - timedelta(hours=1)),
                        "not_after": iso(first_seen + timedelta(days=90)), "log_name": "test", "cert_index": 1,
                        "type": "precert"},
        "domain_whois_parsed": {"status": status, "registrar": registrar,
                                "created": iso(created) if created else None, "nameservers": list(ns)},
        "ip_info": {ip: ({"status": "ok", "asn": str(a[0]), "network_cidr": a[1], "country": a[2]}
                         if a else {"status": "pending"}) for ip, a in ips.items()},
    }
    if score is not None:
        doc["score"], doc["matches"] = score, []
    if registered_domain:
        doc["registered_domain"] = registered_domain
    return doc

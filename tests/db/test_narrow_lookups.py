"""Migration 4 (the address rows carry their domain's first_seen; registrar names have a table of their
own): a store at version 3 upgrades and answers as before, the copies follow every write, an address
range lists a domain once and in order, a WHOIS answer that lands later makes its registrar findable."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text

from scout import db
from scout.db.schema import addresses, domains, registrars, schema_version
from tests.db.test_queries import CASES, DOCS, NEWEST_FIRST, NOW
from tests.support.stores import make_doc, pg_databases, store_url  # noqa: F401 (fixtures)

H = timedelta(hours=1)

# the shape of a version-3 store, from today's (its step 1 creates today's tables)
_TO_V3 = ["DROP INDEX ix_addresses_ip_first_seen", "ALTER TABLE addresses DROP COLUMN first_seen",
          "CREATE INDEX ix_addresses_ip_key ON addresses (ip_key, domain)", "DROP INDEX ix_domains_registrar",
          "DROP TABLE registrars", "DELETE FROM scout_schema WHERE version = 4"]
_PG_V3 = ["CREATE INDEX ix_domains_registrar_trgm ON domains USING gin (lower(registrar) gin_trgm_ops)"]


def _names(store, query: dict) -> list[str]:
    return [d["domain"] for d in db.search(store, db.Filters.from_query(query | {"limit": "1000"}))]


def _copies_agree(store) -> bool:
    """Every address row's first_seen is its domain's."""
    q = (select(addresses.c.first_seen, domains.c.first_seen)
         .join_from(addresses, domains, addresses.c.domain == domains.c.domain))
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    return bool(rows) and all(a == d for a, d in rows)


def _index_names(store) -> set[str]:
    from sqlalchemy import inspect

    with store.engine.connect() as conn:
        return {i["name"] for t in ("domains", "addresses") for i in inspect(conn).get_indexes(t)}


def test_a_version_3_store_upgrades_and_answers_as_before(store_url):
    store = db.open_store(store_url)
    assert db.upsert_documents(store, DOCS) == len(DOCS)
    with store.engine.begin() as conn:
        for sql in _TO_V3 + (_PG_V3 if store.dialect == "postgresql" else []):
            conn.execute(text(sql))
    store.close()
    store = db.open_store(store_url)
    with store.engine.connect() as conn:
        assert list(conn.execute(select(schema_version.c.version)).scalars()) == [1, 2, 3, 4]
        assert set(conn.execute(select(registrars.c.name)).scalars()) == {
            "GoDaddy.com, LLC", "NameCheap, Inc.", "Tucows", "GODADDY INC"}
    assert _copies_agree(store)
    assert "ix_addresses_ip_key" not in _index_names(store) and "ix_domains_registrar_trgm" not in _index_names(store)
    for query, expected in CASES:
        assert _names(store, query) == [n for n in NEWEST_FIRST if n in expected], query
    store.close()


def test_address_rows_follow_a_first_seen_that_moves(store_url):
    store = db.open_store(store_url)
    db.upsert_documents(store, DOCS)
    older = make_doc("shop.example.com", "example.com", NOW - 20 * H, last_seen=NOW - 2 * H,
                     ips={"192.0.2.20": (64500, "192.0.2.0/24", "US")}, ns=["NS1.ALPHA.NET."],
                     registrar="NameCheap, Inc.", score=10, registered_domain="example.com")
    assert db.import_documents(store, [older])["written"] == 1     # an older sighting: first_seen moves back
    assert _copies_agree(store)
    assert _names(store, {"ip": "192.0.2.0/24"}) == ["pending.example.net", "login-paypal.example.com",
                                                     "shop.example.com"]
    assert _names(store, {"ip": "192.0.2.0/24"}) == [n for n in _names(store, {}) if n in
                                                     {"pending.example.net", "login-paypal.example.com",
                                                      "shop.example.com"}]
    store.close()


def test_an_address_range_lists_a_domain_once_in_pages(store_url):
    store = db.open_store(store_url)
    two = {f"198.18.0.{k}": (64600, "198.18.0.0/24", "US") for k in (1, 2)}
    docs = [make_doc(f"d{k}.example", "example", NOW - k * H, ips=two if k % 2 else {"198.18.0.9": None})
            for k in range(7)]
    db.upsert_documents(store, docs)
    want = [f"d{k}.example" for k in range(7)]
    assert _names(store, {"ip": "198.18.0.0/16"}) == want
    pages = [_names(store, {"ip": "198.18.0.0/24", "limit": "3", "offset": str(o)})[:3] for o in (0, 3, 6)]
    assert pages == [want[0:3], want[3:6], want[6:]]
    assert _names(store, {"ip": "198.18.0.0/24", "asn": "64600"}) == want[1::2]
    store.close()


def test_a_registrar_answered_later_is_found(store_url):
    store = db.open_store(store_url)
    doc = make_doc("late.example", "example", NOW, status="pending")
    db.upsert_documents(store, [doc])
    assert _names(store, {"registrar": "late"}) == []
    answered = make_doc("late.example", "example", NOW, registrar="Late Answer Registrar, Inc.")
    assert db.upsert_documents(store, [answered]) == 1
    assert _names(store, {"registrar": "ANSWER registrar"}) == ["late.example"]
    assert db.count(store, db.Filters.from_query({"registrar": "answer"})) == 1
    store.close()

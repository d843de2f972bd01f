"""Issue 17: the store's filters on SQLite and PostgreSQL — every filter returns exactly the expected
domains, alone and combined, with paging; related domains, the overview, pruning, migrations and bad
values."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from scout import db
from tests.support.stores import make_doc, pg_databases, store_url  # noqa: F401 (fixtures)

NOW = datetime.now(timezone.utc)
H = timedelta(hours=1)
D = timedelta(days=1)
GODADDY = "GoDaddy.com, LLC"

DOCS = [
    make_doc("login-paypal.example.com", "example.com", NOW - 0.5 * H, ips={"192.0.2.10": (64500, "192.0.2.0/24", "US")},
             ns=["ns1.alpha.net"], registrar=GODADDY, created=NOW - 2 * D, score=80, registered_domain="example.com"),
    make_doc("shop.example.com", "example.com", NOW - 2 * H, ips={"192.0.2.20": (64500, "192.0.2.0/24", "US")},
             ns=["NS1.ALPHA.NET."], registrar="NameCheap, Inc.", created=NOW - 400 * D, score=10,
             registered_domain="example.com"),
    make_doc("paypal-secure.test", "paypal-secure.test", NOW - 3 * D, ips={"198.51.100.5": (64501, None, "DE")},
             ns=["ns2.beta.org"], registrar=GODADDY, created=NOW - 3 * D - H, score=95),
    make_doc("mail.other.org", "other.org", NOW - 10 * D, ips={"2001:db8::1": (64502, "2001:db8::/32", "NL")},
             status="not_found", score=0),
    make_doc("pending.example.net", "example.net", NOW - H / 3, ips={"192.0.2.10": None}, status="pending",
             score=55),
    make_doc("future-created.example.net", "example.net", NOW - 5 * H, registrar="Tucows", created=NOW - 4 * H),
    make_doc("old.example.org", "example.org", datetime(2026, 1, 1, tzinfo=timezone.utc),
             last_seen=datetime(2026, 1, 2, tzinfo=timezone.utc), registrar="GODADDY INC",
             created=datetime(2025, 12, 30, tzinfo=timezone.utc), score=20),
]
NEWEST_FIRST = ["pending.example.net", "login-paypal.example.com", "shop.example.com",
                "future-created.example.net", "paypal-secure.test", "mail.other.org", "old.example.org"]

CASES = [
    ({}, set(NEWEST_FIRST)),
    ({"domain": "*.example.com"}, {"login-paypal.example.com", "shop.example.com"}),
    ({"domain": "*.example"}, set()),             # a public suffix: no root condition, and no name under it
    ({"domain": "*.net"}, {"pending.example.net", "future-created.example.net"}),
    ({"domain": "*.shop.example.com"}, set()),     # under a subdomain: root example.com, and no name
    ({"domain": "paypal*"}, {"paypal-secure.test"}),
    ({"domain": "*paypal*"}, {"login-paypal.example.com", "paypal-secure.test"}),
    ({"domain": "Shop.Example.com"}, {"shop.example.com"}),
    ({"domain": "*pay_al*"}, set()),             # `_` is a character here, not LIKE's wildcard
    ({"domain": "?hop.example.com"}, {"shop.example.com"}),
    ({"root": "example.com"}, {"login-paypal.example.com", "shop.example.com"}),
    ({"ip": "192.0.2.10"}, {"login-paypal.example.com", "pending.example.net"}),
    ({"ip": "192.0.2.0/24"}, {"login-paypal.example.com", "shop.example.com", "pending.example.net"}),
    ({"ip": "192.0.2.16/28"}, {"shop.example.com"}),
    ({"ip": "2001:db8::/32"}, {"mail.other.org"}),
    ({"ip": "::ffff:0:0/96"}, set()),              # IPv4 kept mapped inside: no address is both
    ({"asn": "64500"}, {"login-paypal.example.com", "shop.example.com"}),
    ({"asn": "AS64502"}, {"mail.other.org"}),
    ({"ns": "ns1.alpha.net"}, {"login-paypal.example.com", "shop.example.com"}),
    ({"ns": "NS2.Beta.org."}, {"paypal-secure.test"}),
    ({"registrar": "godaddy"}, {"login-paypal.example.com", "paypal-secure.test", "old.example.org"}),
    ({"registrar": "CHEAP, inc"}, {"shop.example.com"}),
    ({"registrar": "100%"}, set()),
    ({"since": "1h"}, {"login-paypal.example.com", "pending.example.net"}),
    ({"until": "1d"}, {"paypal-secure.test", "mail.other.org", "old.example.org"}),
    ({"since": "6h", "until": "1h"}, {"shop.example.com", "future-created.example.net"}),
    ({"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:01"}, {"old.example.org"}),
    ({"min_score": "55"}, {"login-paypal.example.com", "paypal-secure.test", "pending.example.net"}),
    ({"registered_within": "7d"}, {"login-paypal.example.com", "paypal-secure.test", "old.example.org"}),
    ({"registered_within": "1d"}, {"paypal-secure.test"}),
    ({"whois_status": "pending"}, {"pending.example.net"}),
    ({"whois_status": "not_found"}, {"mail.other.org"}),
    ({"registrar": "godaddy", "since": "7d"}, {"login-paypal.example.com", "paypal-secure.test"}),
    ({"ip": "192.0.2.0/24", "min_score": "50"}, {"login-paypal.example.com", "pending.example.net"}),
    ({"asn": "64500", "registered_within": "7d", "ns": "ns1.alpha.net"}, {"login-paypal.example.com"}),
]


@pytest.fixture
def filled(store_url):
    store = db.open_store(store_url)
    assert db.upsert_documents(store, DOCS) == len(DOCS)
    yield store
    store.close()


def test_every_filter_returns_exactly_the_expected_domains(filled):
    for query, expected in CASES:
        f = db.Filters.from_query(query | {"limit": "1000"})
        found = [d["domain"] for d in db.search(filled, f)]
        assert set(found) == expected, query
        assert len(found) == len(expected), query          # no domain twice (several addresses, name servers)
        assert db.count(filled, f) == len(expected), query
        assert found == [n for n in NEWEST_FIRST if n in expected], query   # newest first_seen first


def test_documents_come_back_whole_and_pages_follow_each_other(filled):
    by_name = {d["domain"]: d for d in DOCS}
    assert db.get_document(filled, "Shop.Example.COM") == by_name["shop.example.com"]
    assert db.get_document(filled, "absent.example") is None
    pages = [[d["domain"] for d in db.search(filled, db.Filters.from_query({"limit": 3, "offset": o}))]
             for o in (0, 3, 6)]
    assert pages == [NEWEST_FIRST[0:3], NEWEST_FIRST[3:6], NEWEST_FIRST[6:]]


def test_related_domains_and_overview(filled):
    rel = db.related(filled, "login-paypal.example.com")
    assert rel == {"ip": {"192.0.2.10": ["pending.example.net"]}, "ns": {"ns1.alpha.net": ["shop.example.com"]},
                   "registered_domain": ["shop.example.com"]}
    # without a registered_domain field the root domain groups them
    assert db.related(filled, "pending.example.net")["registered_domain"] == ["future-created.example.net"]
    ov = db.overview(filled, min_score=50)
    assert (ov["domains"], ov["last_hour"], ov["whois_pending"]) == (7, 2, 1)
    assert [d["domain"] for d in ov["hits"]] == ["pending.example.net", "login-paypal.example.com"]


def test_prune_deletes_rows_and_their_children(filled):
    assert db.prune_store(filled, NOW - 5 * D) == 2     # last seen 10 days and 11 months ago
    left = {d["domain"] for d in db.search(filled, db.Filters(limit=100))}
    assert left == set(NEWEST_FIRST) - {"mail.other.org", "old.example.org"}
    assert db.search(filled, db.Filters.from_query({"ip": "2001:db8::/32"})) == []
    assert db.prune_store(filled, NOW - 5 * D) == 0


def test_reopening_migrates_once_and_keeps_rows(filled, store_url):
    from sqlalchemy import select

    from scout.db.schema import schema_version

    again = db.open_store(store_url)
    with again.engine.connect() as conn:
        versions = list(conn.execute(select(schema_version.c.version)).scalars())
    assert versions == [1, 2, 3, 4]
    assert again.fts == (again.dialect == "sqlite")          # SQLite's trigram index of substrings
    assert db.count(again, db.Filters()) == len(DOCS)
    again.close()


@pytest.mark.parametrize("query, message", [
    ({"ip": "300.1.1.1"}, "ip="), ({"since": "yesterday"}, "since="), ({"asn": "many"}, "asn="),
    ({"registered_within": "7 days"}, "registered_within="), ({"limit": "0"}, "limit="),
])
def test_bad_filter_values_name_the_filter(query, message):
    with pytest.raises(db.FilterError, match=message):
        db.Filters.from_query(query)


def test_odd_documents_are_stored_or_skipped_never_fatal(store_url):
    store = db.open_store(store_url)
    odd = make_doc("odd.example", "odd.example", NOW, registrar="nul\x00registrar")
    odd["domain_whois"] = "raw with a NUL \x00 and a literal \\u0000"
    odd["domain_whois_parsed"]["created"] = "not a date"
    odd["score"] = "high"
    odd["a_records"] = ["not-an-address", "192.0.2.99"]
    nul = make_doc("nul\x00.example", "example", NOW)
    counts = db.import_documents(store, [odd, None, {"domain": ""}, {"domain": "x.example"}, ["a list"], nul])
    assert counts == {"read": 1, "skipped": 5, "written": 1}
    got = db.get_document(store, "odd.example")
    assert got["domain_whois"].endswith("and a literal \\u0000")   # the literal text is kept as it was
    assert [d["domain"] for d in db.search(store, db.Filters.from_query({"ip": "192.0.2.99"}))] == ["odd.example"]
    assert [d["domain"] for d in db.search(store, db.Filters.from_query({"registrar": "nulreg"}))] == ["odd.example"]
    store.close()


def test_a_url_that_is_no_store_is_a_clear_error(tmp_path):
    with pytest.raises(db.StoreError, match="STORE_URL"):
        db.open_store("mysql://x@localhost/db")
    with pytest.raises(db.StoreError, match="STORE_URL"):
        db.open_store("postgresql://nobody@127.0.0.1:1/none")


def test_a_domain_that_moves_is_found_where_it_is_now(filled):
    moved = make_doc("shop.example.com", "example.com", NOW - 2 * H, last_seen=NOW,
                     ips={"203.0.113.7": (64999, None, "FR")}, ns=["ns9.gamma.io"], registrar="Porkbun LLC")
    moved["seen_count"] = 2
    assert db.upsert_documents(filled, [moved]) == 1
    def names(q):
        return {d["domain"] for d in db.search(filled, db.Filters.from_query(q))}
    assert names({"ip": "192.0.2.20"}) == set() and names({"asn": "64500"}) == {"login-paypal.example.com"}
    assert names({"ip": "203.0.113.7"}) == names({"ns": "ns9.gamma.io"}) == {"shop.example.com"}
    assert names({"ns": "ns1.alpha.net"}) == {"login-paypal.example.com"}
    assert names({"registrar": "porkbun"}) == {"shop.example.com"} and names({"registrar": "namecheap"}) == set()
    assert db.prune_store(filled, NOW + H) == len(DOCS)    # and the substring index forgets them too
    assert names({"registrar": "porkbun"}) == names({"domain": "*shop*"}) == set()
    assert db.upsert_documents(filled, [moved]) == 1 and names({"domain": "*hop.example*"}) == {"shop.example.com"}
    assert db.upsert_documents(filled, [moved]) == 0      # unchanged: nothing written

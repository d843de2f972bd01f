"""Issue 14: the WHOIS step keys domain lookups by registered domain (one dispatch, one cache entry, one
in-flight lock for every `*.github.io` name), the documents waiting for it are found again in their own
folders (OUTPUT_DIR/<root_domain>/), and documents left waiting by the former keying (by root) still
land. Real Redis store and document files; the dispatch is recorded instead of published."""
from __future__ import annotations

import dataclasses

import pytest

from scout.config import Settings
from scout.stages.save import apply_whois_result, save_items
from scout.stages.whois import join_domain_whois
from scout.store import RedisStore
from tests.conftest import emptied_redis, read_documents, redis_db

ANSWER = {"raw": '{"objectClassName": "domain", "ldhName": "GITHUB.IO"}',
          "parsed": {"status": "ok", "registrar": "MarkMonitor Inc."}}


@pytest.fixture
def store():
    for url in emptied_redis(redis_db(14)):
        yield RedisStore(url)


def _items(names):
    from scout.names import root_domain
    return [{"d": n, "r": root_domain(n), "seen": 1_700_000_000.0, "dns": {}} for n in names]


def test_one_lookup_per_registered_domain_and_the_waiting_documents_land(tmp_path, store):
    settings = dataclasses.replace(Settings(), output_dir=str(tmp_path / "out"))
    sent = []
    items = _items(["a1.github.io", "b2.github.io", "x.y.c3.github.io", "shop.herokuapp.com"])
    join_domain_whois(items, settings, store, lambda name, urgency: sent.append(name))
    assert sorted(sent) == ["github.io", "herokuapp.com"]
    assert [it["g"] for it in items] == ["github.io"] * 3 + ["herokuapp.com"]
    # The same names again while the lookup is in flight: no second dispatch.
    join_domain_whois(_items(["d4.github.io"]), settings, store, lambda name, urgency: sent.append(name))
    assert sorted(sent) == ["github.io", "herokuapp.com"]

    save_items(items, settings, store)
    docs = read_documents(tmp_path / "out")
    assert {d: doc["domain_whois_parsed"]["status"] for d, doc in docs.items()} == dict.fromkeys(docs, "pending")
    assert (tmp_path / "out" / "c3.github.io" / "x.y.c3.github.io.json").exists()   # folder by root_domain

    store.set_json("dw:github.io", ANSWER, 3600)
    assert apply_whois_result("domain", "github.io", ANSWER, settings, store) == 3
    docs = read_documents(tmp_path / "out")
    for name in ("a1.github.io", "b2.github.io", "x.y.c3.github.io"):
        assert docs[name]["domain_whois_parsed"]["registrar"] == "MarkMonitor Inc."
        assert docs[name]["registered_domain"] == "github.io"
    assert docs["shop.herokuapp.com"]["domain_whois_parsed"]["status"] == "pending"

    # Later names under github.io: a cache hit, no lookup.
    later = _items(["e5.github.io"])
    join_domain_whois(later, settings, store, lambda name, urgency: sent.append(name))
    assert later[0]["dw"]["parsed"]["registrar"] == "MarkMonitor Inc." and len(sent) == 2


def test_documents_waiting_under_the_former_keying_still_land(tmp_path, store):
    """Before issue 14 the waiting set was `pending:dw:<root>` with bare domain names as members."""
    settings = dataclasses.replace(Settings(), output_dir=str(tmp_path / "out"))
    items = _items(["www2.example.com"])
    items[0]["dw"] = {"raw": "", "parsed": {"status": "pending"}}
    save_items(items, settings, store)
    store.add_members("pending:dw:example.com", ["www2.example.com"], 3600)
    answer = {"raw": "Domain Name: EXAMPLE.COM", "parsed": {"status": "ok", "registrar": "RESERVED-IANA"}}
    assert apply_whois_result("domain", "example.com", answer, settings, store) == 1
    doc = read_documents(tmp_path / "out")["www2.example.com"]
    assert doc["domain_whois_parsed"]["registrar"] == "RESERVED-IANA"

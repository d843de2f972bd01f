"""Issue 17: the save stage writes the SQL store — one transaction per batch, the files' merge rules
(first_seen kept, a sighting counted once however often its batch is delivered), WHOIS answers that land
later update the row; with OUTPUT_FILES=true the store holds exactly the files' documents. Real SQLite
and PostgreSQL."""
from __future__ import annotations

import threading
import time

import pytest

from scout import db
from scout.config import _replace, load_settings
from scout.stages import save
from scout.store import MemoryStore
from tests.conftest import read_documents
from tests.support.stores import pg_databases, store_url  # noqa: F401 (fixtures)

T0 = time.time() - 3600


def settings_for(tmp_path, url, files=True):
    return _replace(load_settings({}, None), output_dir=str(tmp_path / "out"), store_url=url, output_files=files,
                    alert_min_score=0)


def item(domain, root, seen, ip="192.0.2.1", whois_status="pending"):
    return {"d": domain, "r": root, "seen": seen,
            "dns": {"a_records": [ip], "dns_status": {"A": "ok"}},
            "dw": {"raw": "", "parsed": {"status": whois_status}},
            "iw": {ip: {"raw": "", "info": {"status": "ok", "asn": "64500", "network_cidr": "192.0.2.0/24"}}},
            "score": 10, "matches": []}


def rows(url) -> dict:
    store = db.open_store(url)
    try:
        return {d["domain"]: d for d in db.search(store, db.Filters(limit=10_000))}
    finally:
        store.close()


@pytest.mark.parametrize("files", [True, False], ids=["files", "store-only"])
def test_redelivered_batches_count_once_and_first_seen_stays(tmp_path, store_url, files):
    s, mem = settings_for(tmp_path, store_url, files), MemoryStore()
    batch = [item("a.example.com", "example.com", T0), item("b.example.com", "example.com", T0, ip="192.0.2.2")]
    for _ in range(3):                                  # delivered three times: one sighting
        save.save_items(batch, s, mem)
    got = rows(store_url)
    assert {d: r["seen_count"] for d, r in got.items()} == {"a.example.com": 1, "b.example.com": 1}
    save.save_items([item("a.example.com", "example.com", T0 + 60)], s, mem)    # seen again
    save.save_items([item("a.example.com", "example.com", T0 + 60)], s, mem)    # ... and redelivered
    a = rows(store_url)["a.example.com"]
    assert a["seen_count"] == 2 and a["first_seen"] < a["last_seen"]
    if files:
        assert rows(store_url) == read_documents(tmp_path / "out")
    else:
        assert not (tmp_path / "out").exists()          # OUTPUT_FILES=false: no document files


@pytest.mark.parametrize("files", [True, False], ids=["files", "store-only"])
def test_a_whois_answer_landing_later_updates_the_row(tmp_path, store_url, files):
    s, mem = settings_for(tmp_path, store_url, files), MemoryStore()
    save.save_items([item("a.example.com", "example.com", T0)], s, mem)
    store = db.open_store(store_url)
    assert db.search(store, db.Filters.from_query({"whois_status": "pending"}))
    mem.add_members("pending:dw:example.com", ["a.example.com", "never-saved.example.com"], 60)
    answer = {"raw": "Registrar: Example Registrar", "parsed": {
        "status": "ok", "registrar": "Example Registrar", "created": "2026-11-30T00:00:00Z",
        "nameservers": ["ns1.example-dns.net"]}}
    assert save.apply_whois_result("domain", "example.com", answer, s, mem) == 1
    found = [d["domain"] for d in db.search(store, db.Filters.from_query({"registrar": "example reg",
                                                                         "ns": "ns1.example-dns.net"}))]
    assert found == ["a.example.com"]
    assert db.get_document(store, "never-saved.example.com") is None
    store.close()
    if files:
        assert rows(store_url) == read_documents(tmp_path / "out")


def test_an_answer_that_landed_before_the_save_is_in_the_row(tmp_path, store_url):
    s, mem = settings_for(tmp_path, store_url, files=False), MemoryStore()
    mem.set_json("dw:example.com", {"raw": "r", "parsed": {"status": "ok", "registrar": "Early Bird"}}, 60)
    save.save_items([item("a.example.com", "example.com", T0)], s, mem)
    assert rows(store_url)["a.example.com"]["domain_whois_parsed"]["registrar"] == "Early Bird"


def test_concurrent_batches_of_the_same_domains_lose_no_sighting(tmp_path, store_url):
    """Eight writers, each with its own sighting of the same 30 domains, all at once."""
    s, mem = settings_for(tmp_path, store_url, files=False), MemoryStore()
    names = [f"n{i}.example.org" for i in range(30)]
    errors = []

    def writer(k):
        try:
            save.save_items([item(n, "example.org", T0 + k) for n in names], s, mem)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    got = rows(store_url)
    assert {d: r["seen_count"] for d, r in got.items()} == {n: 8 for n in names}

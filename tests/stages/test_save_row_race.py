"""A WHOIS answer that lands between a batch's file write and its row upsert stays in the row (the web
page showed such domains as `pending` for ever: 17 of 56 rows after one `scout run` of the fixture)."""
from __future__ import annotations

import copy

from scout import db
from scout.stages.save import _row_after_file


def doc(status: str, registrar: str | None) -> dict:
    return {"domain": "a.example", "root_domain": "a.example", "a_records": ["192.0.2.1"], "aaaa_records": [],
            "mx_records": [], "txt_records": [], "caa_records": [], "soa_record": "", "domain_whois": "raw" if registrar else "",
            "ip_whois": {"192.0.2.1": ""}, "timestamp": "2026-12-01T10:00:00.000Z", "dns_status": {"A": "NOERROR"},
            "cname_chain": [], "first_seen": "2026-12-01T10:00:00.000Z", "last_seen": "2026-12-01T10:00:00.000Z",
            "seen_count": 1, "domain_whois_parsed": {"status": status, "registrar": registrar, "nameservers": []},
            "ip_info": {"192.0.2.1": {"status": "pending"}}}


def test_a_late_pending_upsert_keeps_the_landed_answer(tmp_path):
    store = db.open_store(f"sqlite:///{tmp_path / 'scout.db'}")
    answered, pending = doc("ok", "Registrar A"), doc("pending", None)
    db.upsert_documents(store, [answered])                       # apply_whois_result's upsert came first
    written = copy.deepcopy(pending)
    db.upsert_documents(store, [written], merge=_row_after_file)  # then the batch's own, with `pending`
    row = db.get_document(store, "a.example")
    assert row["domain_whois_parsed"] == answered["domain_whois_parsed"] and row["domain_whois"] == "raw"
    assert written == pending                                    # the file's document is not changed
    # Without the rule (the file's document as it is) the answer is lost: what the test guards against.
    db.upsert_documents(store, [pending])
    assert db.get_document(store, "a.example")["domain_whois_parsed"]["status"] == "pending"
    store.close()

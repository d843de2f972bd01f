"""The chain's save step, and the update of saved documents when a WHOIS lookup lands.

Documents are written through scout.stages.files (lock, atomic write); a WHOIS answer that landed
between the WHOIS step and the save fills a `pending` field under the document's lock, and a
re-sighting whose WHOIS is still pending keeps the answer the document already has.

With a SQL store (STORE_URL, scout.db) the batch's documents are upserted in one transaction after the
files: with OUTPUT_FILES=true the file's document goes in as it is (the store equals the files); with
OUTPUT_FILES=false the store's row is merged by the same rules, under the store's per-domain lock.
"""
from __future__ import annotations

import time
from collections import Counter

from scout import db
from scout.config import store_url_of
from scout.stages import document, files
from scout.stages.chain import settle
from scout.stages.document import ANSWERED, PENDING, WAITING
from scout.stages.ipcache import cached_ip_result


def _fill_waiting(doc: dict, store, settings) -> None:
    """Under the document's lock: a WHOIS answer that landed meanwhile replaces `pending`."""
    parsed = doc.get("domain_whois_parsed") or {}
    if parsed.get("status") == PENDING:
        hit = store.get_json("dw:" + (doc.get("registered_domain") or doc["root_domain"]))
        if hit is not None:
            doc["domain_whois"] = hit.get("raw", "")
            doc["domain_whois_parsed"] = hit.get("parsed", {})
    for ip, info in list((doc.get("ip_info") or {}).items()):
        if info.get("status") == PENDING:
            hit = cached_ip_result(store, ip)
            if hit is not None:
                doc["ip_whois"][ip] = hit.get("raw", "")
                doc["ip_info"][ip] = hit.get("info", {})


def _as_configured(doc: dict, settings) -> dict:
    """OUTPUT_RAW_WHOIS=false: the raw WHOIS/RDAP answers stay out of the document (the fields stay, empty,
    as the schema has them); the parsed fields are kept. Raw answers are most of a document's bytes."""
    if not settings.output_raw_whois:
        doc["domain_whois"] = ""
        doc["ip_whois"] = {ip: "" for ip in doc.get("ip_whois") or {}}
    return doc


def _keep_known_whois(old: dict, new: dict) -> None:
    """A re-sighting whose WHOIS is still pending keeps the answer the old document already has."""
    new_parsed = new.get("domain_whois_parsed") or {}
    old_parsed = old.get("domain_whois_parsed") or {}
    if new_parsed.get("status") in WAITING and old_parsed.get("status") in ANSWERED:
        new["domain_whois"], new["domain_whois_parsed"] = old.get("domain_whois", ""), old_parsed
    old_info = old.get("ip_info") or {}
    for ip, info in (new.get("ip_info") or {}).items():
        if info.get("status") in WAITING and old_info.get(ip, {}).get("status") in ANSWERED:
            new["ip_info"][ip] = old_info[ip]
            new["ip_whois"][ip] = (old.get("ip_whois") or {}).get(ip, "")


def sql_store(settings) -> db.SqlStore | None:
    """The SQL store this process writes, or None (files only)."""
    url = store_url_of(settings)
    return db.shared_store(url, fsync=settings.save_fsync) if url else None


def _merger(store, settings, counts: Counter, sightings: list):
    """merge(old, new): the files' rules for one sighting, under the document's lock. A new sighting
    (not a batch delivered again) is noted in `sightings` with the document as written."""
    def merge(old, doc):
        _fill_waiting(doc, store, settings)
        if old:
            _keep_known_whois(old, doc)
        counts["saved_updated" if old else "saved_new"] += 1
        merged = _as_configured(document.merge_documents(old, doc), settings)
        if not old or old.get("last_seen") != doc["last_seen"]:
            sightings.append(merged)
        return merged
    return merge


def save_items(items: list[dict], settings, store, on_saved=None) -> int:
    """Write (or update) every item's document: its file, and its row in the SQL store in one
    transaction per batch. Raises on the first write error (the task retries the batch; writes are
    idempotent)."""
    now = time.time()
    counts: Counter = Counter()
    sightings: list[dict] = []
    merge = _merger(store, settings, counts, sightings)
    sql = sql_store(settings)
    new_docs = [document.new_document(it, now) for it in items]
    if settings.output_files:
        written = []
        for it, doc in zip(items, new_docs):
            files.update_document(settings.output_dir, it["r"], it["d"],
                                  lambda old, doc=doc: _keep(written, merge(old, doc)), fsync=settings.save_fsync)
        if sql is not None:
            db.upsert_documents(sql, written, merge=_row_after_file)
    else:
        db.upsert_documents(sql, new_docs, merge=merge)
    # Once per sighting, with the document as written (first_seen, seen_count): a batch retried or
    # delivered again finds its sightings already counted and says nothing twice.
    for doc in sightings if on_saved is not None else ():
        on_saved(doc)
    counts["domains_saved"] = len(items)
    store.incr(counts)
    settle(store, items)
    return len(items)


def _sighting(doc: dict) -> tuple:
    return (doc.get("seen_count") if isinstance(doc.get("seen_count"), int) else 1, doc.get("last_seen") or "")


def _row_after_file(old: dict | None, new: dict) -> dict | None:
    """The file's document for its row, unless the row is already newer. A row is written after its
    file's lock is released, so another writer of the same domain may have written its (later) file and
    row in between: a later sighting stays (None: the row is left as it is), and a WHOIS answer the row
    already has is kept over this document's `pending` (a lookup that landed in between)."""
    if old is not None:
        if _sighting(old) > _sighting(new):
            return None
        new = {**new, "ip_info": dict(new.get("ip_info") or {}), "ip_whois": dict(new.get("ip_whois") or {})}
        _keep_known_whois(old, new)
        # The file's last write is the later of the two (a WHOIS answer landing sets `timestamp`).
        new["timestamp"] = max(new.get("timestamp") or "", old.get("timestamp") or "")
    return new


def _keep(kept: list, doc):
    kept.append(doc)
    return doc


def apply_whois_result(kind: str, key: str, result: dict, settings, store, keep_pending: bool = False) -> int:
    """A lookup landed: update every saved document waiting for it (its file, its row in the SQL
    store). -> documents updated."""
    pending_key = ("pending:dw:" if kind == "domain" else "pending:ip:") + key
    members = store.get_members(pending_key) if keep_pending else store.pop_members(pending_key)
    targets = {}
    for member in members:
        root, bar, domain = member.partition("|")
        if not bar:  # a domain waiting since before members named their root: keyed by the root then
            root, domain = key, member
        targets[domain] = root

    def change(old):
        if old is None:
            return None  # not written yet: the save stage reads the cache under the same lock
        new = _with_domain_whois(old, result) if kind == "domain" else _with_ip_whois(old, key, result)
        return None if new is None else _as_configured(document.order_document(new), settings)

    sql = sql_store(settings)
    if settings.output_files:
        written: list = []
        for domain, root in targets.items():
            files.update_document(settings.output_dir, root, domain,
                                  lambda old: None if (new := change(old)) is None else _keep(written, new),
                                  fsync=settings.save_fsync)
        if sql is not None:
            db.upsert_documents(sql, written, merge=_row_after_file)
        updated = len(written)
    else:
        updated = db.update_documents(sql, targets, lambda domain, old: change(old))
    store.incr({"documents_whois_updated": updated})
    return updated


def _with_domain_whois(old: dict, result: dict) -> dict | None:
    """`old` with a landed domain WHOIS answer, or None to leave it as it is."""
    old_status = (old.get("domain_whois_parsed") or {}).get("status")
    if old_status in ANSWERED and (result.get("parsed") or {}).get("status") not in ANSWERED:
        return None  # a failed lookup never hides an earlier answer
    new = dict(old)
    new["domain_whois"] = result.get("raw", "")
    new["domain_whois_parsed"] = result.get("parsed", {})
    new["timestamp"] = document.utc_iso()   # the time of this write (the seed's meaning of `timestamp`)
    return new


def _with_ip_whois(old: dict, ip: str, result: dict) -> dict | None:
    """`old` with a landed IP WHOIS answer for `ip`, or None to leave it as it is."""
    if ip not in (old.get("ip_info") or {}):
        return None  # the domain moved to other addresses meanwhile
    if old["ip_info"][ip].get("status") in ANSWERED and (result.get("info") or {}).get("status") not in ANSWERED:
        return None
    new = dict(old)
    new["ip_whois"] = dict(old.get("ip_whois") or {})
    new["ip_info"] = dict(old.get("ip_info") or {})
    new["ip_whois"][ip] = result.get("raw", "")
    new["ip_info"][ip] = result.get("info", {})
    new["timestamp"] = document.utc_iso()
    return new

"""The canary: a synthetic domain that travels the real chain (same queues, same workers) and is answered
without any network, so `scout canary` (and CANARY_INTERVAL in the producer) can tell whether the
pipeline works and how long each stage takes, even when CT is quiet.

A canary item is `scout-canary-<random>.invalid` (RFC 6761: `.invalid` never exists, so nothing outside
ever has to be asked) AND carries the marker `k` (the times it passed each stage). A name from a
certificate never has the marker, so it is never taken for a canary. Each stage answers canaries
itself: DNS says NXDOMAIN for every type, the WHOIS step `not_found` with no lookup, and the save step
writes no document, no alert and no counter of saved documents: it records the canary's times in the
store under `canary:<name>` (1 hour), where whoever sent it reads them. Every stage also writes its
progress there, so a canary that never arrives shows where it stopped.
"""
from __future__ import annotations

import secrets
import time

from scout.stages.chain import settle
from scout.stages.dns import TYPES, empty_records

PREFIX = "scout-canary-"
SUFFIX = ".invalid"
KEY = "canary:"
TTL = 3600.0
STAGES = ("dns", "whois", "save")


def new_item(now: float | None = None) -> dict:
    now = time.time() if now is None else now
    name = f"{PREFIX}{secrets.token_hex(6)}{SUFFIX}"
    return {"d": name, "r": name, "seen": now, "k": {"sent": now}}


def is_canary(item) -> bool:
    d = item.get("d", "") if isinstance(item, dict) else ""
    return isinstance(item.get("k") if isinstance(item, dict) else None, dict) and \
        d.startswith(PREFIX) and d.endswith(SUFFIX)


def split(items: list) -> tuple[list, list]:
    """-> (canaries, the other items)."""
    canaries = [it for it in items if is_canary(it)]
    if not canaries:
        return [], items
    return canaries, [it for it in items if not is_canary(it)]


def passed(items: list[dict], stage: str, store) -> None:
    """Canaries passed `stage`: note the time on them and in the store (progress for whoever waits)."""
    now = time.time()
    for it in items:
        it["k"][stage] = now
        store.set_json(KEY + it["d"], it["k"], TTL)


def answer_dns(items: list[dict], store) -> None:
    for it in items:
        rec = empty_records()
        rec["dns_status"] = {t: "NXDOMAIN" for t in TYPES}   # .invalid: never exists (RFC 6761)
        rec.pop("transient")
        it["dns"] = rec
    passed(items, "dns", store)


def answer_whois(items: list[dict], store) -> None:
    for it in items:
        it["dw"] = {"raw": "", "parsed": {"status": "not_found"}}
        it["iw"] = {}
    passed(items, "whois", store)


def arrive(items: list[dict], store) -> None:
    """The save step for canaries: their times go to the store, their batches leave the ledger."""
    passed(items, "save", store)
    store.incr({"canary_saved": len(items)})
    settle(store, items)


def read(store, name: str) -> dict | None:
    return store.get_json(KEY + name)


def latency(times: dict) -> dict:
    """Seconds spent per stage (queue wait included) and in total, from the times a canary carries."""
    out, before = {}, times.get("sent")
    for stage in STAGES:
        if stage in times and before is not None:
            out[stage] = round(times[stage] - before, 4)
            before = times[stage]
    if "save" in times:
        out["total"] = round(times["save"] - times["sent"], 4)
    return out

"""The output document: field order, the file each domain lives in, the JSON Schema, and the WHOIS
statuses a document carries while its lookups are on their way.

Pure functions. The schema file ships in the package (scout/data/document.schema.json).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from scout.names import registered_domain

# The original tool's fields, with its types, in its order; then this project's additions.
ORIGINAL_FIELDS = ("domain", "root_domain", "a_records", "aaaa_records", "mx_records", "txt_records",
                   "caa_records", "soa_record", "domain_whois", "ip_whois", "timestamp")
ADDED_FIELDS = ("registered_domain", "dns_status", "cname_chain", "first_seen", "last_seen", "seen_count",
                "certificate", "domain_whois_parsed", "ip_info", "score", "matches")
MAX_FILE_NAME = 255
HASHED_PREFIX = "_h_"

# `domain_whois_parsed.status` / `ip_info[ip].status` values of this pipeline's own (a lookup's answers
# are `ok`, `not_found`, `rate_limited`, `error: ...`).
PENDING, SKIPPED_BACKLOG, SKIPPED_LOW_SCORE, RESERVED = (
    "pending", "skipped_backlog", "skipped_low_score", "reserved")
WAITING = (PENDING, SKIPPED_BACKLOG, SKIPPED_LOW_SCORE)
ANSWERED = ("ok", "not_found", RESERVED)   # a lookup answered: only a newer answer replaces these
PENDING_TTL = 7 * 86400.0          # documents waiting for a WHOIS answer are remembered this long


def utc_iso(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc) if ts is not None else datetime.now(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _safe_component(name: str, suffix: str = "") -> str:
    """A file-name component for a normalised name; too long (or odd) names fall back to a hash."""
    if (name and len(name) + len(suffix) <= MAX_FILE_NAME and not name.startswith(".")
            and "/" not in name and "\\" not in name and "\x00" not in name):
        return name + suffix
    return HASHED_PREFIX + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest() + suffix


@functools.lru_cache(maxsize=16)
def _resolved(output_dir: str) -> Path:
    return Path(output_dir).resolve()   # once per directory, not once per document


def document_path(output_dir: str | os.PathLike, root: str, domain: str) -> Path:
    """OUTPUT_DIR/<root_domain>/<domain>.json, guaranteed to stay inside OUTPUT_DIR."""
    base = _resolved(os.path.abspath(output_dir))
    path = base.joinpath(_safe_component(root), _safe_component(domain, ".json"))
    if path.parent.parent != base:  # defence in depth: names are already normalised
        raise ValueError(f"refusing a path outside OUTPUT_DIR for {domain!r}")
    return path


def order_document(doc: dict) -> dict:
    """The document's keys in the documented order (unknown keys last, sorted)."""
    out = {k: doc[k] for k in ORIGINAL_FIELDS + ADDED_FIELDS if k in doc}
    for k in sorted(doc):
        if k not in out:
            out[k] = doc[k]
    return out


def new_document(item: dict, now: float) -> dict:
    """A document for a chain item (see scout.stages.chain for the item's keys)."""
    dns = item.get("dns") or {}
    seen = item.get("seen", now)
    doc = {
        "domain": item["d"],
        "root_domain": item["r"],
        "a_records": list(dns.get("a_records", [])),
        "aaaa_records": list(dns.get("aaaa_records", [])),
        "mx_records": list(dns.get("mx_records", [])),
        "txt_records": list(dns.get("txt_records", [])),
        "caa_records": list(dns.get("caa_records", [])),
        "soa_record": dns.get("soa_record", ""),
        "domain_whois": (item.get("dw") or {}).get("raw", ""),
        "ip_whois": {ip: r.get("raw", "") for ip, r in (item.get("iw") or {}).items()},
        "timestamp": utc_iso(now),
        "registered_domain": item.get("g") or registered_domain(item["d"]),
        "dns_status": dict(dns.get("dns_status", {})),
        "cname_chain": list(dns.get("cname_chain", [])),
        "first_seen": utc_iso(seen),
        "last_seen": utc_iso(seen),
        "seen_count": 1,
    }
    if item.get("c"):
        doc["certificate"] = item["c"]
    if item.get("dw"):
        doc["domain_whois_parsed"] = item["dw"].get("parsed", {})
    if item.get("iw") is not None:
        doc["ip_info"] = {ip: r.get("info", {}) for ip, r in item["iw"].items()}
    if "score" in item:
        doc["score"] = item["score"]
        doc["matches"] = item.get("matches", [])
    return doc


def merge_documents(old: dict | None, new: dict) -> dict:
    """A domain seen again: keep first_seen, count the sighting once (idempotent on redelivery)."""
    if not old:
        return order_document(new)
    merged = dict(new)
    merged["first_seen"] = min(old.get("first_seen") or new["first_seen"], new["first_seen"])
    old_count = old.get("seen_count") if isinstance(old.get("seen_count"), int) else 1
    if new["last_seen"] == old.get("last_seen"):  # the same sighting delivered twice
        merged["seen_count"] = old_count
    else:
        merged["seen_count"] = old_count + 1
        merged["last_seen"] = max(old.get("last_seen") or "", new["last_seen"])
    # Writers stamp a batch when it starts: one that started earlier may write last. The document's last
    # write never goes back in time (and its SQL row, which keeps the later stamp, stays equal to it).
    stamp = max(old.get("timestamp") or "", new.get("timestamp") or "")
    if stamp:
        merged["timestamp"] = stamp
    return order_document(merged)


try:
    import orjson
except ImportError:  # pragma: no cover
    orjson = None


def dumps(doc: dict) -> bytes:
    """Indented UTF-8 JSON and a final newline (orjson: several times faster than the json module)."""
    if orjson is not None:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def loads(data: bytes):
    return orjson.loads(data) if orjson is not None else json.loads(data)


def schema() -> dict:
    return json.loads(resources.files("scout").joinpath("data/document.schema.json").read_text("utf-8"))

"""A document -> its row in `domains` and its rows in `addresses` and `nameservers`.

Only what a query filters on becomes a column; the document itself is kept whole. A field that does
not parse (a hand-edited file, an odd WHOIS date) becomes NULL, never an error: the document is still
stored and still found by its other fields.
"""
from __future__ import annotations

import functools
import ipaddress
import socket
from datetime import datetime, timezone

from scout.db.schema import ip_key


def parse_time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _int_or_none(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2 ** 63) <= value < 2 ** 63 else None
    if isinstance(value, str):
        try:
            return int(value.strip().upper().removeprefix("AS"))
        except ValueError:
            return None
    return None


def _text(value) -> str | None:
    """A text column: PostgreSQL's text holds no NUL."""
    return (value.replace("\x00", "") or None) if isinstance(value, str) and value else None


def unusable(doc) -> str | None:
    """Why a document cannot be stored (None when it can): it needs a domain and a first_seen (or a
    timestamp) that parses."""
    if not isinstance(doc, dict) or not isinstance(doc.get("domain"), str) or not doc["domain"].strip():
        return "no domain"
    if "\x00" in doc["domain"] or len(doc["domain"]) > 2048:
        return "not a domain name"
    if parse_time(doc.get("first_seen")) is None and parse_time(doc.get("timestamp")) is None:
        return "no first_seen"
    return None


def domain_row(doc: dict) -> dict:
    """The `domains` row of a document (the document itself goes to `documents`)."""
    parsed = doc.get("domain_whois_parsed") if isinstance(doc.get("domain_whois_parsed"), dict) else {}
    cert = doc.get("certificate") if isinstance(doc.get("certificate"), dict) else {}
    first_seen = parse_time(doc.get("first_seen")) or parse_time(doc.get("timestamp"))
    last_seen = parse_time(doc.get("last_seen")) or first_seen
    created = parse_time(parsed.get("created"))
    score = doc.get("score")
    return {
        "domain": doc["domain"],
        "root_domain": _text(doc.get("root_domain")) or doc["domain"],
        "registered_domain": _text(doc.get("registered_domain")),
        "first_seen": first_seen,
        "last_seen": last_seen,
        "seen_count": doc["seen_count"] if isinstance(doc.get("seen_count"), int) else 1,
        "score": score if isinstance(score, int) and not isinstance(score, bool) else None,
        "registrar": _text(parsed.get("registrar")),
        "whois_created": created,
        "whois_expires": parse_time(parsed.get("expires")),
        "whois_status": _text(parsed.get("status")),
        "registration_age": (int((first_seen - created).total_seconds())
                             if created is not None and first_seen is not None else None),
        "cert_issuer": _text(cert.get("issuer")),
        "not_before": parse_time(cert.get("not_before")),
    }


@functools.lru_cache(maxsize=65536)
def _address(text: str) -> tuple[str, bytes] | None:
    """(normalised text, ip_key) of an address, None when it is not one. Cached: the same addresses
    come back batch after batch."""
    text = text.strip()
    if ":" not in text:
        # IPv4 through the C parser (as strict as ipaddress: four decimal octets, no leading zeros);
        # ipaddress's Python parser was a third of a batch's time in the driver when every address is new
        try:
            packed = socket.inet_pton(socket.AF_INET, text)
        except (OSError, ValueError):
            return None
        return socket.inet_ntop(socket.AF_INET, packed), b"\x04" + packed
    try:
        norm = str(ipaddress.ip_address(text))
    except ValueError:
        return None
    return norm, ip_key(norm)


def address_rows(doc: dict) -> list[dict]:
    """One row per A/AAAA address, with the ASN, network and country of its IP WHOIS answer (and the
    domain's first_seen: the order of an address range's matches)."""
    info = doc.get("ip_info") if isinstance(doc.get("ip_info"), dict) else {}
    first_seen = parse_time(doc.get("first_seen")) or parse_time(doc.get("timestamp"))   # as domain_row's
    out, seen = [], set()
    for ip in list(doc.get("a_records") or []) + list(doc.get("aaaa_records") or []):
        parsed = _address(ip) if isinstance(ip, str) else None
        if parsed is None or parsed[0] in seen:
            continue  # not an address (nothing to match), or twice
        text, key = parsed
        seen.add(text)
        i = info.get(ip) if isinstance(info.get(ip), dict) else {}
        out.append({"domain": doc["domain"], "ip": text, "ip_key": key,
                    "asn": _int_or_none(i.get("asn")), "network_cidr": _text(i.get("network_cidr")),
                    "country": _text(i.get("country") or i.get("asn_country")), "first_seen": first_seen})
    return out


def nameserver_rows(doc: dict) -> list[dict]:
    """The name servers of the WHOIS/RDAP answer, lower case, without the final dot."""
    parsed = doc.get("domain_whois_parsed") if isinstance(doc.get("domain_whois_parsed"), dict) else {}
    names = {(_text(ns) or "").strip().lower().rstrip(".") for ns in (parsed.get("nameservers") or [])}
    return [{"domain": doc["domain"], "ns": ns} for ns in sorted(names) if ns]

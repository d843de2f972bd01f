"""A document shaped for its page: the sections in reading order, each a list of (label, value) rows,
and the links to its neighbours. Pure functions; values stay as they are (the templates escape them)."""
from __future__ import annotations

import json
from urllib.parse import quote, urlencode

DNS_FIELDS = (("A", "a_records"), ("AAAA", "aaaa_records"), ("MX", "mx_records"), ("TXT", "txt_records"),
              ("CAA", "caa_records"))
CERT_FIELDS = ("type", "issuer", "not_before", "not_after", "sha256", "log_name", "log_url", "cert_index")
WHOIS_FIELDS = ("status", "registrar", "created", "updated", "expires", "statuses", "nameservers", "source",
                "server", "servers", "registrar_status")
SEARCH_FIELDS = ("domain", "root", "ip", "asn", "ns", "registrar", "since", "until", "min_score",
                 "registered_within", "whois_status", "limit")


def domain_url(name: str) -> str:
    return "/domain/" + quote(str(name), safe="")


def search_url(**filters) -> str:
    return "/search?" + urlencode({k: v for k, v in filters.items() if v not in (None, "")})


def pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def when(value) -> str:
    """2026-12-01T11:11:15.432Z -> 2026-12-01 11:11:15 (UTC, as every time in the documents)."""
    s = str(value or "")
    return s[:19].replace("T", " ") if len(s) >= 19 and s[10:11] == "T" else s


def text(value) -> str:
    """A field as text: lists joined, missing values as an empty string."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return pretty(value)
    return str(value)


def summary_rows(doc: dict) -> list[tuple[str, str]]:
    keys = ("domain", "root_domain", "first_seen", "last_seen", "seen_count", "score", "timestamp")
    return [(k, text(doc.get(k))) for k in keys if k in doc]


def certificate_rows(doc: dict) -> list[tuple[str, str]]:
    cert = doc.get("certificate") if isinstance(doc.get("certificate"), dict) else {}
    return [(k, text(cert.get(k))) for k in CERT_FIELDS if k in cert]


def dns_rows(doc: dict) -> list[tuple[str, str, list]]:
    """(type, status, records) for each record type, the SOA and the CNAME chain."""
    status = doc.get("dns_status") if isinstance(doc.get("dns_status"), dict) else {}
    rows = [(t, status.get(t, ""), list(doc.get(field) or [])) for t, field in DNS_FIELDS]
    rows.append(("SOA", status.get("SOA", ""), [doc["soa_record"]] if doc.get("soa_record") else []))
    if doc.get("cname_chain"):
        rows.append(("CNAME", "", list(doc["cname_chain"])))
    return rows


def whois_rows(doc: dict) -> list[tuple[str, str]]:
    parsed = doc.get("domain_whois_parsed") if isinstance(doc.get("domain_whois_parsed"), dict) else {}
    return [(k, text(parsed.get(k))) for k in WHOIS_FIELDS if parsed.get(k) not in (None, "", [])]


def address_rows(doc: dict) -> list[tuple[str, dict]]:
    """(address, what its IP WHOIS/RDAP said) for every A/AAAA record."""
    info = doc.get("ip_info") if isinstance(doc.get("ip_info"), dict) else {}
    ips = list(doc.get("a_records") or []) + list(doc.get("aaaa_records") or [])
    return [(ip, info.get(ip) if isinstance(info.get(ip), dict) else {}) for ip in ips]


def related_groups(doc: dict, related: dict) -> list[dict]:
    """One group per address, name server and the registered domain: its title, the search that lists
    them all, and the other domains found."""
    groups = []
    for ip, names in sorted((related.get("ip") or {}).items()):
        groups.append({"title": f"Same IP address {ip}", "search": search_url(ip=ip), "domains": names})
    for ns, names in sorted((related.get("ns") or {}).items()):
        groups.append({"title": f"Same name server {ns}", "search": search_url(ns=ns), "domains": names})
    root = doc.get("root_domain")
    groups.append({"title": f"Same registered domain {root}", "search": search_url(root=root),
                   "domains": related.get("registered_domain") or []})
    return groups

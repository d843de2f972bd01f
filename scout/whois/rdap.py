"""RDAP over HTTP: one GET with status handling, and readers for domain and IP network objects.

Everything here treats the answer as hostile: wrong types anywhere in the JSON are skipped, never raised.
"""
from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

from .errors import LookupFailed, RateLimited
from .http import http_get, parse_retry_after
from .targets import Guard

RATE_WORDS = re.compile(
    r"rate.?limit|too many (?:requests|queries)|quota|limit (?:exceeded|reached)|exceeded\b.{0,40}\blimit"
    r"|try again later|slow down|query limit|request limit",
    re.IGNORECASE | re.DOTALL,
)


class RdapNotFound(Exception):
    """HTTP 404 (or an RDAP error object with errorCode 404): the object does not exist."""


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def fetch_rdap(url: str, *, guard: Guard, timeout: float, max_bytes: int, trusted: bool = True,
               deadline: float | None = None) -> tuple[dict, str, str]:
    """GET an RDAP object (`trusted`: a URL from the bootstrap; else one an answer named). Returns
    (object, raw text, final URL).

    Raises RateLimited (429; 403/422/503 with limit wording or Retry-After), RdapNotFound (404),
    LookupFailed(reason) for everything else ("http 500", "invalid rdap json", "timeout", ...).
    """
    resp = http_get(url, guard=guard, trusted=trusted, timeout=timeout, max_bytes=max_bytes, deadline=deadline)
    text = resp.text()
    server = origin(resp.url or url)
    retry_after = parse_retry_after(resp.headers.get("retry-after"))
    if resp.status == 429:
        raise RateLimited(server, retry_after)
    if resp.status in (403, 422, 503) and (RATE_WORDS.search(text[:4096])
                                           or (resp.status == 503 and retry_after is not None)):
        raise RateLimited(server, retry_after)
    if resp.status == 404:
        raise RdapNotFound(text)
    if resp.status != 200:
        raise LookupFailed(f"http {resp.status}")
    try:
        obj = json.loads(text)
    except ValueError:
        raise LookupFailed("invalid rdap json") from None
    if not isinstance(obj, dict):
        raise LookupFailed("invalid rdap json")
    code = obj.get("errorCode")
    if code == 429:
        raise RateLimited(server, retry_after)
    if code == 404:
        raise RdapNotFound(text)
    if code is not None and "objectClassName" not in obj:
        raise LookupFailed(f"rdap error {str(code)[:10]}")
    return obj, text, resp.url or url


# ---------------------------------------------------------------- readers


def iso_date(value) -> str | None:
    """An RDAP/WHOIS date (str or datetime) -> ISO 8601 in UTC, None when unreadable."""
    if isinstance(value, list):
        value = next((v for v in value if v), None)
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value.strip():
        s = value.strip()
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            try:
                from dateutil import parser as du
                dt = du.parse(s[:64])
            except (ValueError, OverflowError, TypeError):
                return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError):
        return None


def _list(value) -> list:
    return value if isinstance(value, list) else []


def vcard_name(entity: dict) -> str | None:
    """fn (or org) from an entity's jCard (RFC 7095)."""
    vcard = entity.get("vcardArray") if isinstance(entity, dict) else None
    if not (isinstance(vcard, list) and len(vcard) >= 2 and isinstance(vcard[1], list)):
        return None
    found = {}
    for prop in vcard[1]:
        if isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str):
            val = prop[3]
            if isinstance(val, list):
                val = " ".join(str(v) for v in val if isinstance(v, (str, int)) and str(v).strip())
            if isinstance(val, str) and val.strip():
                found.setdefault(prop[0].lower(), val.strip())
    return found.get("fn") or found.get("org")


def _entities(obj: dict):
    """Entities of an object, depth-first (registrars sometimes sit one level down)."""
    stack = list(_list(obj.get("entities")))
    seen = 0
    while stack and seen < 200:
        ent = stack.pop(0)
        seen += 1
        if isinstance(ent, dict):
            yield ent
            stack.extend(_list(ent.get("entities")))


def parse_domain(obj: dict) -> dict:
    """registrar, created, updated, expires, nameservers, statuses of an RDAP domain object."""
    out = {"registrar": None, "created": None, "updated": None, "expires": None,
           "nameservers": [], "statuses": []}
    for ent in _entities(obj):
        roles = [r.lower() for r in _list(ent.get("roles")) if isinstance(r, str)]
        if "registrar" in roles:
            name = vcard_name(ent)
            if not name and isinstance(ent.get("handle"), str):
                name = ent["handle"]
            if name:
                out["registrar"] = name[:256]
                break
    for ev in _list(obj.get("events")):
        if not isinstance(ev, dict):
            continue
        action = str(ev.get("eventAction", "")).lower()
        key = {"registration": "created", "last changed": "updated", "expiration": "expires"}.get(action)
        if key and out[key] is None:
            out[key] = iso_date(ev.get("eventDate"))
    ns = []
    for n in _list(obj.get("nameservers")):
        if isinstance(n, dict):
            name = n.get("ldhName") or n.get("unicodeName")
            if isinstance(name, str) and name.strip():
                name = name.strip().lower().rstrip(".")
                if name not in ns:
                    ns.append(name)
    out["nameservers"] = ns[:64]
    out["statuses"] = [s.strip() for s in _list(obj.get("status")) if isinstance(s, str) and s.strip()][:32]
    return out


def related_links(obj: dict) -> list[str]:
    """hrefs of links rel="related" with an RDAP media type (the registrar's copy of the object)."""
    out = []
    for link in _list(obj.get("links")):
        if not isinstance(link, dict):
            continue
        href, rel, typ = link.get("href"), link.get("rel"), link.get("type")
        if not (isinstance(href, str) and isinstance(rel, str) and rel.lower() == "related"):
            continue
        if isinstance(typ, str) and "rdap+json" not in typ.lower():
            continue
        if href.lower().startswith(("http://", "https://")) and href not in out:
            out.append(href)
    return out


def network_cover(obj: dict, ip: str) -> str | None:
    """The CIDR (containing `ip`) that an RDAP ip network object covers: cidr0_cidrs first, else the
    start/end range split into CIDRs."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    nets = []
    for c in _list(obj.get("cidr0_cidrs")):
        if not isinstance(c, dict):
            continue
        prefix = c.get("v4prefix") or c.get("v6prefix")
        try:
            nets.append(ipaddress.ip_network(f"{prefix}/{int(c.get('length'))}", strict=False))
        except (ValueError, TypeError):
            continue
    if not any(addr in n for n in nets if n.version == addr.version):
        try:
            start = ipaddress.ip_address(_strip_v4_zeros(obj.get("startAddress")))
            end = ipaddress.ip_address(_strip_v4_zeros(obj.get("endAddress")))
            if start.version == end.version and start <= end:
                nets = list(ipaddress.summarize_address_range(start, end))
        except (ValueError, TypeError):
            pass
    inside = [n for n in nets if n.version == addr.version and addr in n]
    if not inside:
        return None
    return str(max(inside, key=lambda n: n.prefixlen))


def _strip_v4_zeros(value) -> str:
    s = str(value or "").strip()
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", s):
        return ".".join(str(int(p)) for p in s.split("."))
    return s

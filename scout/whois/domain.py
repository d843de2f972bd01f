"""Domain WHOIS for a registrable root domain: RDAP when the TLD has a service, port 43 otherwise.

`lookup_domain(root, settings, source_ip=None)` returns

    {"raw": str,            # every answer's text in query order, separated by a blank line
     "parsed": {"source": "rdap" | "whois", "server": str, "servers": [str, ...],
                "registrar": str | None, "created": iso | None, "updated": iso | None,
                "expires": iso | None, "nameservers": [str], "statuses": [str],
                "status": "ok" | "not_found" | "error: <reason>",
                # only when the registrar hop was tried and failed:
                "registrar_status": "rate_limited" | "not_found" | "error: <reason>"}}

and raises only `RateLimited` (from the registry or the referral server; a registrar that limits us after
the registry answered leaves the registry's data in place). Bounds: each request ends within
WHOIS_TIMEOUT, the whole lookup within 2 x WHOIS_TIMEOUT; answers are capped at WHOIS_MAX_BYTES.
"""
from __future__ import annotations

import logging
import re
import time

from .bootstrap import get_bootstrap, to_alabel
from .errors import LookupFailed, RateLimited
from .port43 import format_server, parse_server, query_text, whois_query
from .rdap import RdapNotFound, fetch_rdap, origin, parse_domain, related_links
# Port-43 answers are read by scout.whois.text (every registry's layout, "no match" and "slow down"
# wordings); the names below are the ones this module has always used.
from .text import NOT_FOUND as _NOT_FOUND
from .text import is_rate_limited as _is_rate_limited
from .text import parse_whois_text
from .text import rate_wait as _rate_wait

log = logging.getLogger(__name__)

MAX_WHOIS_HOPS = 3

__all__ = ["lookup_domain", "parse_whois_text"]

_REFERRAL = re.compile(
    r"^\s*(?:refer|whois|registrar whois server|whois server|referralserver)\s*:\s*(\S+)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def _parsed(source: str, server: str, status: str, **fields) -> dict:
    out = {"source": source, "server": server, "servers": [], "registrar": None, "created": None,
           "updated": None, "expires": None, "nameservers": [], "statuses": [], "status": status}
    out.update(fields)
    return out


def _has_data(f: dict) -> bool:
    return bool(f.get("registrar") or f.get("created") or f.get("updated") or f.get("expires")
                or f.get("nameservers") or f.get("statuses"))


def _merge(primary: dict, secondary: dict) -> dict:
    out = dict(primary)
    for k in ("registrar", "created", "updated", "expires"):
        if not out.get(k) and secondary.get(k):
            out[k] = secondary[k]
    for k in ("nameservers", "statuses"):
        merged = list(out.get(k) or [])
        for v in secondary.get(k) or []:
            if v not in merged:
                merged.append(v)
        out[k] = merged
    return out


def lookup_domain(root: str, settings, source_ip: str | None = None) -> dict:
    """WHOIS/RDAP for one registrable domain (see the module docstring for the result)."""
    try:
        name = to_alabel(root)
        if "." not in name or len(name) > 253:
            raise ValueError(name)
    except (ValueError, UnicodeError):
        return {"raw": "", "parsed": _parsed("whois", "", "error: invalid domain name")}
    timeout = float(settings.whois_timeout)
    deadline = time.monotonic() + 2 * timeout
    base = get_bootstrap(settings).domain_base(name)
    if base:
        return _lookup_rdap(name, base, settings, source_ip, deadline)
    return _lookup_whois(name, settings, source_ip, deadline)


# ---------------------------------------------------------------- RDAP


def _lookup_rdap(name: str, base: str, settings, source_ip, deadline) -> dict:
    url = f"{base}domain/{name}"
    server = base
    kw = {"timeout": float(settings.whois_timeout), "max_bytes": int(settings.whois_max_bytes),
          "source_ip": source_ip, "deadline": deadline}
    try:
        obj, text, final_url = fetch_rdap(url, **kw)
    except RdapNotFound as nf:
        p = _parsed("rdap", server, "not_found")
        p["servers"] = [server]
        return {"raw": str(nf.args[0]) if nf.args else "", "parsed": p}
    except LookupFailed as e:
        p = _parsed("rdap", server, f"error: {e.reason}")
        p["servers"] = [server]
        return {"raw": "", "parsed": p}
    fields = parse_domain(obj)
    raws = [text]
    servers = [server]
    extra = {}
    for href in related_links(obj)[:1]:  # at most one extra hop: the registrar's RDAP
        if href == final_url or href == url:
            continue
        servers.append(origin(href))
        try:
            obj2, text2, _ = fetch_rdap(href, **kw)
        except RateLimited:
            extra["registrar_status"] = "rate_limited"
            continue
        except RdapNotFound:
            extra["registrar_status"] = "not_found"
            continue
        except LookupFailed as e:
            extra["registrar_status"] = f"error: {e.reason}"
            continue
        fields = _merge(fields, parse_domain(obj2))
        raws.append(text2)
    status = "ok" if (_has_data(fields) or obj.get("ldhName")) else "error: no registration data in answer"
    p = _parsed("rdap", server, status, **fields)
    p["servers"] = servers
    p.update(extra)
    return {"raw": "\n\n".join(raws), "parsed": p}


# ---------------------------------------------------------------- port 43


def _referral(text: str) -> str | None:
    for m in _REFERRAL.finditer(text):
        value = m.group(1).strip()
        if value and value.lower() not in ("none", "n/a", "-"):
            return value
    return None


def _names_domain(text: str, name: str) -> bool:
    return re.search(rf"^\s*domain(?: name)?\s*:\s*{re.escape(name)}\.?\s*$", text,
                     re.IGNORECASE | re.MULTILINE) is not None


def _lookup_whois(name: str, settings, source_ip, deadline) -> dict:
    timeout = float(settings.whois_timeout)
    max_bytes = int(settings.whois_max_bytes)
    try:
        current = parse_server(settings.whois_referral_server)
    except ValueError:
        return {"raw": "", "parsed": _parsed("whois", "", "error: bad referral server setting")}
    visited: set = set()
    raws: list[str] = []
    servers: list[str] = []
    data: list[tuple[str, dict]] = []   # (server, fields) of answers that carry registration data
    extra: dict = {}
    loop = False
    hop = 0
    while current is not None and hop < MAX_WHOIS_HOPS:
        if current in visited:
            loop = True
            break
        visited.add(current)
        hop += 1
        host, port = current
        label = format_server(host, port)
        servers.append(label)
        try:
            text = whois_query(host, port, query_text(host, name), timeout=timeout, max_bytes=max_bytes,
                               source_ip=source_ip, deadline=deadline)
        except LookupFailed as e:
            if data:   # the registrar failed after the registry answered: keep the registry's data
                extra["registrar_status"] = f"error: {e.reason}"
                break
            return {"raw": "\n\n".join(raws), "parsed": _whois_parsed(label, servers, f"error: {e.reason}")}
        raws.append(text)
        if _is_rate_limited(text):
            if data:
                extra["registrar_status"] = "rate_limited"
                break
            raise RateLimited(label, _rate_wait(text))
        ref = _referral(text)
        nxt = None
        if ref:
            try:
                nxt = parse_server(ref)
            except ValueError:
                nxt = None
        # The referral server's own answer (IANA's TLD object) is registration data only when it
        # names the queried domain itself (a referral server that is really a registry).
        is_referral_only = hop == 1 and not _names_domain(text, name)
        if not is_referral_only:
            fields, not_found = parse_whois_text(name, text)
            if not_found or (_NOT_FOUND.search(text) and not _has_data(fields)):
                if data:
                    extra["registrar_status"] = "not_found"
                    break
                p = _whois_parsed(label, servers, "not_found")
                return {"raw": "\n\n".join(raws), "parsed": p}
            if _has_data(fields):
                data.append((label, fields))
            elif data:
                extra["registrar_status"] = "error: no registration data in answer"
            else:
                return {"raw": "\n\n".join(raws),
                        "parsed": _whois_parsed(label, servers, "error: no registration data in answer")}
        elif nxt is None:
            return {"raw": "\n\n".join(raws),
                    "parsed": _whois_parsed(label, servers, "error: no whois server for this tld")}
        current = nxt
    if not data:
        reason = "referral loop" if loop else "too many referrals" if current is not None else "no answer"
        return {"raw": "\n\n".join(raws), "parsed": _whois_parsed(servers[-1] if servers else "", servers,
                                                                   f"error: {reason}")}
    server, fields = data[0]
    for _, more in data[1:]:
        fields = _merge(fields, more)
    p = _parsed("whois", server, "ok", **fields)
    p["servers"] = servers
    p.update(extra)
    return {"raw": "\n\n".join(raws), "parsed": p}


def _whois_parsed(server: str, servers: list, status: str) -> dict:
    p = _parsed("whois", server, status)
    p["servers"] = list(servers)
    return p

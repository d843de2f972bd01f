"""Domain WHOIS for a registrable root domain: RDAP when the TLD has a service, port 43 otherwise.

`lookup_domain(root, settings, source_ip=None)` returns

    {"raw": str,            # RDAP: the registry's JSON object as received, or, when the registrar's
                            #   RDAP answered too, one JSON text {"registry": <obj>, "registrar": <obj>};
                            # port 43: every answer kept, each under a line "=== <server> ===", in order
     "parsed": {"source": "rdap" | "whois", "server": str, "servers": [str, ...],
                "hops": [{"server": str, "status": str}, ...],   # every server tried, with its outcome
                "registrar": str | None, "created": iso | None, "updated": iso | None,
                "expires": iso | None, "nameservers": [str], "statuses": [str],
                "status": "ok" | "not_found" | "error: <reason>",
                # only when the registrar hop was tried and did not add to the registry's answer:
                "registrar_status": "rate_limited" | "not_found" | "refused: <why>"
                                    | "error: answer for another domain" | "error: <reason>"},
     "refused": [str]}      # targets named by answers that were refused ("target: why")

and raises only `RateLimited` (from the registry or the referral server; a registrar that limits us after
the registry answered leaves the registry's data in place). Targets named by answers (RDAP related links,
redirects, port-43 referrals) pass scout.whois.targets first; a refused or unreachable registrar never
costs the registry's answer. A registrar's answer about another domain than the one asked is not merged.
Bounds: each request (name resolution included) ends within WHOIS_TIMEOUT, the whole lookup within
2 x WHOIS_TIMEOUT; answers are capped at WHOIS_MAX_BYTES.
"""
from __future__ import annotations

import logging
import re
import time

from .bootstrap import get_bootstrap, to_alabel
from .errors import LookupFailed, RateLimited
from .port43 import format_server, parse_server, query_text, whois_query
from .rdap import RdapNotFound, fetch_rdap, origin, parse_domain, related_links
from .targets import Guard, TargetRefused, host_key
# Port-43 answers are read by scout.whois.text (every registry's layout, "no match" and "slow down"
# wordings); the names below are the ones this module has always used.
from .text import NOT_FOUND as _NOT_FOUND
from .text import is_rate_limited as _is_rate_limited
from .text import parse_whois_text
from .text import rate_wait as _rate_wait

log = logging.getLogger(__name__)

__all__ = ["lookup_domain", "parse_whois_text"]

_REFERRAL = re.compile(
    r"^\s*(?:refer|whois|registrar whois server|whois server|referralserver)\s*:\s*(\S+)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_DOMAIN_LINE = re.compile(r"^\s*domain(?: name)?\s*:\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)


def _parsed(source: str, server: str, status: str, **fields) -> dict:
    out = {"source": source, "server": server, "servers": [], "registrar": None, "created": None,
           "updated": None, "expires": None, "nameservers": [], "statuses": [], "status": status}
    out.update(fields)
    return out


def _has_data(f: dict) -> bool:
    return bool(f.get("registrar") or f.get("created") or f.get("updated") or f.get("expires")
                or f.get("nameservers") or f.get("statuses"))


def _result(source: str, server: str, status: str, hops: list, guard: Guard, raw: str = "",
            fields: dict | None = None, extra: dict | None = None) -> dict:
    """The lookup's result: `hops` is [(server, outcome)] in the order tried."""
    p = _parsed(source, server, status, **(fields or {}))
    p["servers"] = [srv for srv, _ in hops]
    p["hops"] = [{"server": srv, "status": st} for srv, st in hops]
    p.update(extra or {})
    return {"raw": raw, "parsed": p, "refused": list(guard.refused)}


def _failure(e: LookupFailed) -> str:
    """A hop's outcome when it failed: "refused: <why>" for a refused target, "error: <reason>" else."""
    return e.reason if isinstance(e, TargetRefused) else f"error: {e.reason}"


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
    guard = Guard(settings, source_ip, registry=base)
    url = f"{base}domain/{name}"
    kw = {"guard": guard, "timeout": float(settings.whois_timeout), "max_bytes": int(settings.whois_max_bytes),
          "deadline": deadline}
    try:
        obj, text, final_url = fetch_rdap(url, **kw)
    except RdapNotFound as nf:
        return _result("rdap", base, "not_found", [(base, "not_found")], guard,
                       raw=str(nf.args[0]) if nf.args else "")
    except LookupFailed as e:
        return _result("rdap", base, f"error: {e.reason}", [(base, _failure(e))], guard)
    fields, raw, hops, extra = parse_domain(obj), text, [(base, "ok")], {}
    # At most one extra hop: the registrar's RDAP (its first related link that is not this object).
    href = next((h for h in related_links(obj) if h not in (url, final_url)), None)
    if href:
        outcome, obj2, text2 = _registrar_rdap(name, href, kw)
        hops.append((origin(href), outcome))
        if obj2 is not None:
            fields = _merge(fields, parse_domain(obj2))
            # One JSON value (both texts exactly as received; each parsed as JSON already).
            raw = '{"registry": ' + text + ', "registrar": ' + text2 + "}"
        else:
            extra["registrar_status"] = outcome
    status = "ok" if (_has_data(fields) or obj.get("ldhName")) else "error: no registration data in answer"
    return _result("rdap", base, status, hops, guard, raw=raw, fields=fields, extra=extra)


def _registrar_rdap(name: str, href: str, kw: dict) -> tuple[str, dict | None, str | None]:
    """The registrar's RDAP object behind a related link -> (outcome, object, text); object and text
    only when it answered about `name` itself."""
    try:
        obj, text, _ = fetch_rdap(href, trusted=False, **kw)
    except RateLimited:
        return "rate_limited", None, None
    except RdapNotFound:
        return "not_found", None, None
    except LookupFailed as e:
        return _failure(e), None, None
    if not _rdap_names(obj, name):
        return "error: answer for another domain", None, None
    return "ok", obj, text


def _rdap_names(obj: dict, name: str) -> bool:
    """Does an RDAP domain object describe `name` (its ldhName or unicodeName)?"""
    for key in ("ldhName", "unicodeName"):
        value = obj.get(key)
        if isinstance(value, str):
            try:
                if to_alabel(value) == name:
                    return True
            except (ValueError, UnicodeError):
                continue
    return False


# ---------------------------------------------------------------- port 43


def _referral(text: str) -> str | None:
    for m in _REFERRAL.finditer(text):
        value = m.group(1).strip()
        if value and value.lower() not in ("none", "n/a", "-"):
            return value
    return None


def _names_domain(text: str, name: str) -> bool:
    """Does a port-43 answer name `name` on a `Domain Name:` / `domain:` line (A-label or U-label)?"""
    for m in _DOMAIN_LINE.finditer(text):
        try:
            if to_alabel(m.group(1)) == name:
                return True
        except (ValueError, UnicodeError):
            continue
    return False


def _lookup_whois(name: str, settings, source_ip, deadline) -> dict:
    """WHOIS_REFERRAL_SERVER (trusted), then the referrals answers name (learned: scout.whois.targets)."""
    try:
        current = parse_server(settings.whois_referral_server)
    except ValueError:
        return {"raw": "", "parsed": _parsed("whois", "", "error: bad referral server setting"), "refused": []}
    guard = Guard(settings, source_ip)
    visited: set = set()
    answers: list[tuple[str, str]] = []  # (server, text) kept in `raw`
    hops: list[tuple[str, str]] = []     # (server, outcome) of every server tried
    data: list[tuple[str, dict]] = []    # (server, fields) of answers that carry registration data
    extra: dict = {}
    while current is not None and current not in visited:
        visited.add(current)
        host, port = current
        label = format_server(host, port)
        try:
            text = _ask_port43(guard, current, not hops, not data, name, settings, source_ip, deadline)
        except LookupFailed as e:
            hops.append((label, _failure(e)))
            if not data:
                return _whois_result(label, f"error: {e.reason}", answers, hops, guard)
            extra["registrar_status"] = _failure(e)   # the registry answered: keep its data
            break
        outcome, fields = _classify_port43(name, text, first=len(hops) == 0, after_data=bool(data))
        hops.append((label, outcome))
        if outcome == "rate_limited" and not data:
            raise RateLimited(label, _rate_wait(text))
        if outcome != "error: answer for another domain":
            answers.append((label, text))
        if outcome == "ok":
            data.append((label, fields))
            guard.registry = guard.registry or host_key(host)   # a referral server that is a registry
        elif outcome != "referral":
            if not data:
                return _whois_result(label, outcome, answers, hops, guard)
            extra["registrar_status"] = outcome
            break
        current = _referral_server(text)
        if current is None and outcome == "referral":
            return _whois_result(label, "error: no whois server for this tld", answers, hops, guard)
    if not data:
        reason = "referral loop" if current is not None else "no answer"
        return _whois_result(hops[-1][0] if hops else "", f"error: {reason}", answers, hops, guard)
    server, fields = data[0]
    for _, more in data[1:]:
        fields = _merge(fields, more)
    return _result("whois", server, "ok", hops, guard, raw=_port43_raw(answers), fields=fields, extra=extra)


def _ask_port43(guard: Guard, server: tuple[str, int], first: bool, registry: bool, name: str, settings,
                source_ip, deadline) -> str:
    """One port-43 query: the referral server as configured, any other server as a learned target (the
    first of them is the registry). Name resolution, connection and answer within WHOIS_TIMEOUT."""
    host, port = server
    timeout = float(settings.whois_timeout)
    end = min(time.monotonic() + timeout, deadline)
    target = guard.trusted(host, port, end) if first else guard.learned_whois(host, port, end, registry)
    return whois_query(target, query_text(host, name), timeout=timeout, max_bytes=int(settings.whois_max_bytes),
                       source_ip=source_ip, deadline=end)


def _classify_port43(name: str, text: str, first: bool, after_data: bool) -> tuple[str, dict | None]:
    """What one port-43 answer is -> (outcome, fields): "referral" (the referral server's own answer:
    IANA's TLD object), "rate_limited", "not_found", "ok" with fields, "error: answer for another domain"
    (a registrar naming another domain), "error: no registration data in answer"."""
    if _is_rate_limited(text):
        return "rate_limited", None
    # The referral server's own answer is registration data only when it names the queried domain
    # itself (a referral server that is really a registry).
    if first and not _names_domain(text, name):
        return "referral", None
    fields, not_found = parse_whois_text(name, text)
    if not_found or (_NOT_FOUND.search(text) and not _has_data(fields)):
        return "not_found", None
    if not _has_data(fields):
        return "error: no registration data in answer", None
    if after_data and not _names_domain(text, name):
        return "error: answer for another domain", None
    return "ok", fields


def _referral_server(text: str) -> tuple[str, int] | None:
    ref = _referral(text)
    if not ref:
        return None
    try:
        return parse_server(ref)
    except ValueError:
        return None


def _port43_raw(answers: list[tuple[str, str]]) -> str:
    """Every answer kept, each under its own "=== <server> ===" line (one text, answers apart)."""
    return "\n".join(f"=== {server} ===\n{text.rstrip()}\n" for server, text in answers)


def _whois_result(server: str, status: str, answers: list, hops: list, guard: Guard) -> dict:
    return _result("whois", server, status, hops, guard, raw=_port43_raw(answers))

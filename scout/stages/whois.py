"""The chain's WHOIS step, and the cached lookups its rate-limited tasks run.

The step never waits for WHOIS: it scores each item (the score sets WHOIS priority and
WHOIS_MIN_SCORE), attaches what the caches hold, and for a miss marks the document `pending` and
dispatches one lookup per registered domain or address (one in flight per key across all workers).
Domain WHOIS is keyed by the registered domain (scout.names.registered_domain, the ICANN section of the
Public Suffix List): every `*.github.io` name shares the one answer about `github.io`. A lookup that
lands is cached and applied to every saved document waiting for it (scout.stages.save.apply_whois_result).
The lookups themselves are scout/whois/; this module is their use in the pipeline.
"""
from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict

from scout.names import registered_domain
from scout import metrics
from scout.stages.document import PENDING, PENDING_TTL, RESERVED, SKIPPED_BACKLOG, SKIPPED_LOW_SCORE
from scout.stages.ipcache import cache_ip_result, cached_ip_result, cached_ip_results
from scout.stages.priority import score_items
from scout.whois.ip import is_reserved

INFLIGHT_TTL = 6 * 3600.0          # one lookup per key in flight; expires in case a worker vanished
ERROR_CACHE_TTL = 3600.0           # a failed lookup is not repeated for an hour


def join_whois(items: list[dict], settings, store, watchlist, dispatch_domain, dispatch_ip,
               lookups_waiting=None) -> list[dict]:
    """The chain's WHOIS step: score (the score sets WHOIS priority and WHOIS_MIN_SCORE), then attach
    cached domain and IP WHOIS, dispatching one rate-limited lookup per missing root and address.
    `lookups_waiting()` says how many lookups wait in the broker (WHOIS_MAX_BACKLOG bounds it)."""
    score_items(items, watchlist)
    join_domain_whois(items, settings, store, dispatch_domain, lookups_waiting)
    return join_ip_whois(items, settings, store, dispatch_ip, lookups_waiting)


class _Backlog:
    """WHOIS lookups waiting: read from the broker's lookup queues once per batch, when first needed, then
    counted up with what this batch dispatches. Derived from what is really queued, never from a running
    difference of counters (one that a purge or a lost message would leave high for good)."""

    def __init__(self, lookups_waiting=None):
        self.read = lookups_waiting or (lambda: 0)
        self.value: int | None = None

    def get(self) -> int:
        if self.value is None:
            try:
                self.value = int(self.read())
            except Exception:  # broker unreadable: the dispatch itself will tell
                self.value = 0
        return self.value


def _skip_reason(group: list[dict], settings, backlog: _Backlog) -> str | None:
    if settings.whois_min_score and max(it.get("score", 0) for it in group) < settings.whois_min_score:
        return SKIPPED_LOW_SCORE
    if settings.whois_max_backlog and backlog.get() >= settings.whois_max_backlog:
        return SKIPPED_BACKLOG
    return None


def _wait_or_dispatch(kind: str, key: str, group: list[dict], members: list[str], settings, store,
                      backlog: _Backlog, counts: Counter, send, recheck) -> tuple[str, dict | None]:
    """A cache miss for `key` (kind "dw": a root, "ip": an address): register the waiting documents and
    dispatch one lookup unless one is in flight; or skip it (low score, backlog full). -> (the status,
    None), or ("hit", the answer) when a lookup landed between the cache read and taking its lock."""
    reason = _skip_reason(group, settings, backlog)
    owned = store.acquire(f"{kind}:{key}", INFLIGHT_TTL)
    if owned:
        # The lock is free once a lookup has landed: it may have landed since the batch read the cache.
        hit = recheck()
        if hit is not None:
            store.release(f"{kind}:{key}")
            return "hit", hit
    if reason and owned:
        store.release(f"{kind}:{key}")  # skipped: no lookup for it
        return reason, None
    # A lookup is dispatched now, or already in flight (then waiting for it costs nothing).
    store.add_members(f"pending:{kind}:{key}", members, PENDING_TTL)
    if owned:
        send(min(it.get("urgency", 5) for it in group))
        counts["whois_dispatched"] += 1
        backlog.value = backlog.get() + 1
    return PENDING, None


def _status_result(status: str) -> dict:
    return {"raw": "", "parsed": {"status": status}}


def whois_key(item: dict) -> str:
    """The name an item's domain WHOIS is asked, cached and single-flighted under: its registered domain
    (ICANN section of the PSL), noted on the item as `g` (items from before it was kept are computed)."""
    key = item.get("g")
    if not key:
        key = item["g"] = registered_domain(item["d"])
    return key


def join_domain_whois(items: list[dict], settings, store, dispatch, lookups_waiting=None) -> list[dict]:
    """Attach cached domain WHOIS to each item; for a miss mark it pending and dispatch one lookup per
    registered domain (dispatch(name, urgency)). Never waits for a lookup."""
    by_key: dict[str, list[dict]] = defaultdict(list)
    for it in items:
        by_key[whois_key(it)].append(it)
    keys = list(by_key)
    cached = store.get_many_json(["dw:" + k for k in keys])
    counts: Counter = Counter()
    backlog = _Backlog(lookups_waiting)
    for key, hit in zip(keys, cached):
        group = by_key[key]
        if hit is not None:
            result = hit
            counts["whois_domain_cache_hit"] += len(group)
        else:
            # Waiting documents are named "<root_domain>|<domain>": their file is OUTPUT_DIR/<root>/.
            status, result = _wait_or_dispatch(
                "dw", key, group, [f"{it['r']}|{it['d']}" for it in group], settings, store, backlog, counts,
                lambda urgency, key=key: dispatch(key, urgency), lambda key=key: store.get_json("dw:" + key))
            counts[{PENDING: "whois_domain_cache_miss", "hit": "whois_domain_cache_hit"}.get(
                status, "whois_" + status)] += len(group)
            result = result if result is not None else _status_result(status)
        for it in group:
            it["dw"] = result
    store.incr(counts)
    return items


def ips_of(item: dict, settings) -> list[str]:
    dns = item.get("dns") or {}
    ips = list(dns.get("a_records", []))
    if settings.ip_whois_aaaa:
        ips += dns.get("aaaa_records", [])
    return ips


def join_ip_whois(items: list[dict], settings, store, dispatch, lookups_waiting=None) -> list[dict]:
    """Attach cached IP WHOIS per address; dispatch one lookup per uncached address."""
    by_ip: dict[str, list[dict]] = defaultdict(list)
    for it in items:
        it["iw"] = {}
        for ip in ips_of(it, settings):
            by_ip[ip].append(it)
    counts: Counter = Counter()
    backlog = _Backlog(lookups_waiting)
    # The lookup layer's own test: a reserved address is never looked up, whatever the caller.
    reserved = {ip for ip in by_ip if is_reserved(ip)}
    cached = cached_ip_results(store, [ip for ip in by_ip if ip not in reserved])
    for ip, group in by_ip.items():
        if ip in reserved:
            result = {"raw": "", "info": {"status": RESERVED}}
            counts["whois_ip_reserved"] += 1
        else:
            result = cached[ip]
            if result is not None:
                counts["whois_ip_cache_hit"] += 1
            else:
                status, result = _wait_or_dispatch(
                    "ip", ip, group, [f"{it['r']}|{it['d']}" for it in group], settings, store, backlog,
                    counts, lambda urgency, ip=ip, root=group[0]["r"]: dispatch(ip, root, urgency),
                    lambda ip=ip: cached_ip_result(store, ip, fresh=True))
                counts[{PENDING: "whois_ip_cache_miss", "hit": "whois_ip_cache_hit"}.get(
                    status, "whois_" + status)] += 1
                result = result if result is not None else {"raw": "", "info": {"status": status}}
        for it in group:
            it["iw"][ip] = result
    store.incr(counts)
    return items



# ---------------------------------------------------------------- lookups (rate-limited tasks call these)

class WhoisServerDown(Exception):
    """No connection to the WHOIS/RDAP server: the lookup is retried with backoff, nothing is cached.
    (Timeouts, garbage and huge answers are answers of a kind: cached briefly, saved with their status.)"""


# A registry that cannot be reached (its name did not resolve for want of a DNS answer included): retried.
# A registrar that cannot be reached never gets here: the registry's answer is the result then.
SERVER_DOWN = ("error: connection failed", "error: dns timeout", "error: dns failure")


def _raise_if_server_down(status: str, server, store) -> None:
    if status in SERVER_DOWN:
        store.incr({"whois_server_down": 1})
        raise WhoisServerDown(f"{server or 'WHOIS server'}: {status[len('error: '):]}")


def lookup_domain_cached(root: str, settings, store, source_ip, lookup) -> tuple[dict, bool]:
    """-> (result, queried). A result cached meanwhile (another worker, or an earlier retry) wins."""
    hit = store.get_json("dw:" + root)
    if hit is not None:
        return hit, False
    result = lookup(root, settings, source_ip)
    status = (result.get("parsed") or {}).get("status", "")
    _raise_if_server_down(status, (result.get("parsed") or {}).get("server"), store)
    ttl = settings.whois_cache_ttl if status in ("ok", "not_found") else ERROR_CACHE_TTL
    store.set_json("dw:" + root, result, ttl)
    metrics.whois_lookup("domain", (result.get("parsed") or {}).get("server"), status)
    store.incr({"whois_domain_queries": 1, f"whois_status:{status.split(':')[0]}": 1,
                f"whois_server:{(result.get('parsed') or {}).get('server') or '?'}": 1,
                "whois_target_refused": len(result.get("refused") or ())})
    return result, True


def lookup_ip_cached(ip: str, settings, store, source_ip, lookup) -> tuple[dict, bool]:
    hit = cached_ip_result(store, ip, fresh=True)
    if hit is not None:
        return hit, False
    result = lookup(ip, settings, source_ip)
    info = result.get("info") or {}
    status = info.get("status", "")
    _raise_if_server_down(status, info.get("server"), store)
    good = status in ("ok", "not_found")
    covers = result.get("cover") or []
    if isinstance(covers, str):
        covers = [covers]
    networks = []
    for cidr in covers if good else []:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if ipaddress.ip_address(ip) in net:
            networks.append(net)
    if not networks:  # the address alone
        networks = [ipaddress.ip_network(ipaddress.ip_address(ip))]
    cache_ip_result(store, networks, result, settings.whois_cache_ttl if good else ERROR_CACHE_TTL)
    metrics.whois_lookup("ip", info.get("server"), status)
    store.incr({"whois_ip_queries": 1, f"whois_server:{info.get('server') or '?'}": 1,
                "whois_target_refused": len(result.get("refused") or ())})
    return result, True

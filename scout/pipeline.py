"""The pipeline's stages as plain functions over micro-batches of items, and the chain that links them.

An item is one domain travelling through the chain, a small JSON object:
  d: domain, r: root domain, seen: time of the sighting (epoch s), c: certificate facts (optional),
  score / matches / urgency: watchlist result (optional), dns: the DNS stage's records,
  dw: domain WHOIS {raw, parsed}, iw: {ip: {raw, info}}.
Celery tasks (scout.tasks) are thin wrappers; tests call these functions directly.
"""
from __future__ import annotations

import ipaddress
import logging
import time
import traceback
import uuid
from collections import Counter, defaultdict

from . import dns_stage, ledger, output, save_stage
from .whois.ip import is_reserved

log = logging.getLogger(__name__)

STAGES = ("dns", "whois", "save")
PENDING, SKIPPED_BACKLOG, SKIPPED_LOW_SCORE, RESERVED = (
    "pending", "skipped_backlog", "skipped_low_score", "reserved")
WAITING = (PENDING, SKIPPED_BACKLOG, SKIPPED_LOW_SCORE)
ANSWERED = ("ok", "not_found", RESERVED)   # a lookup answered: only a newer answer replaces these
PENDING_TTL = 7 * 86400.0          # documents waiting for a WHOIS answer are remembered this long
INFLIGHT_TTL = 6 * 3600.0          # one lookup per key in flight; expires in case a worker vanished
ERROR_CACHE_TTL = 3600.0           # a failed lookup is not repeated for an hour


def build_chain(items: list[dict], start: str = "dns", attempt: int = 0):
    """The Celery chain from `start` to save, carrying `items`."""
    from celery import chain

    from . import tasks

    sigs = {"dns": tasks.dns, "whois": tasks.whois, "save": tasks.save}
    names = STAGES[STAGES.index(start):]
    first = sigs[names[0]].s(items, attempt=attempt) if names[0] == "dns" else sigs[names[0]].s(items)
    # A short argument summary for Flower and events: Celery's own repr of a 50-domain batch costs a
    # third of the time of publishing it.
    shown = ", ".join(it["d"] for it in items[:3]) + (", ..." if len(items) > 3 else "")
    argsrepr = f"[{len(items)} domains: {shown}]"
    return chain(*(sig.set(argsrepr=argsrepr) for sig in [first, *(sigs[n].s() for n in names[1:])]))


def rest_of_chain(stage: str) -> list[str]:
    return list(STAGES[STAGES.index(stage) + 1:]) if stage in STAGES else []


def retry_countdown(attempt: int, base: float = 5.0, cap: float = 300.0) -> float:
    return min(cap, base * (2 ** attempt))


# ---------------------------------------------------------------- dns

def run_dns(items: list[dict], settings) -> tuple[list[dict], list[dict]]:
    """Resolve every item; -> (answered items, items no server answered for)."""
    results = dns_stage.resolve_batch([it["d"] for it in items], settings)
    done, transient = [], []
    for it, rec in zip(items, results):
        is_transient = rec.pop("transient")
        it["dns"] = rec
        (transient if is_transient else done).append(it)
    return done, transient


def dns_server_answers(settings) -> bool:
    """Does any DNS server answer at all? (Told apart: a domain nobody answers for vs a server down.)"""
    rec = dns_stage.resolve_batch(["."], settings)[0]
    return not rec["transient"]


# ---------------------------------------------------------------- scoring

def urgency_for(score: int, matches: list) -> int:
    """0 (WHOIS first) .. 9 (last): watched roots and high scores jump the WHOIS queue."""
    if any(m.get("rule") == "watched_root" for m in matches):
        return 0
    for threshold, urgency in ((100, 1), (80, 2), (65, 3), (40, 4), (1, 5)):
        if score >= threshold:
            return urgency
    return 7


def score_item(item: dict, watchlist) -> int:
    """Watchlist score, matches and WHOIS urgency on the item (once: a scored item keeps its score)."""
    if "score" not in item:
        from .watchlist import score_domain

        item["score"], item["matches"] = score_domain(item["d"], item["r"], watchlist)
        item["urgency"] = urgency_for(item["score"], item["matches"])
    return item["score"]


def score_items(items: list[dict], watchlist) -> list[dict]:
    for it in items:
        score_item(it, watchlist)
    return items


# ---------------------------------------------------------------- whois (the chain's cheap step)

def join_whois(items: list[dict], settings, store, watchlist, dispatch_domain, dispatch_ip) -> list[dict]:
    """The chain's WHOIS step: score (the score sets WHOIS priority and WHOIS_MIN_SCORE), then attach
    cached domain and IP WHOIS, dispatching one rate-limited lookup per missing root and address."""
    score_items(items, watchlist)
    join_domain_whois(items, settings, store, dispatch_domain)
    return join_ip_whois(items, settings, store, dispatch_ip)


class _Backlog:
    """WHOIS lookups dispatched and not landed yet: read from the store once per batch, when first needed."""

    def __init__(self, store):
        self.store = store
        self.value: int | None = None

    def get(self) -> int:
        if self.value is None:
            c = self.store.counters()
            self.value = c.get("whois_dispatched", 0) - c.get("whois_landed", 0)
        return self.value


def _skip_reason(group: list[dict], settings, backlog: _Backlog) -> str | None:
    if settings.whois_min_score and max(it.get("score", 0) for it in group) < settings.whois_min_score:
        return SKIPPED_LOW_SCORE
    if settings.whois_max_backlog and backlog.get() >= settings.whois_max_backlog:
        return SKIPPED_BACKLOG
    return None


def _wait_or_dispatch(kind: str, key: str, group: list[dict], members: list[str], settings, store,
                      backlog: _Backlog, counts: Counter, send) -> str:
    """A cache miss for `key` (kind "dw": a root, "ip": an address): register the waiting documents and
    dispatch one lookup unless one is in flight; or skip it (low score, backlog full). -> the status."""
    reason = _skip_reason(group, settings, backlog)
    owned = store.acquire(f"{kind}:{key}", INFLIGHT_TTL)
    if reason and owned:
        store.release(f"{kind}:{key}")  # skipped: no lookup for it
        return reason
    # A lookup is dispatched now, or already in flight (then waiting for it costs nothing).
    store.add_members(f"pending:{kind}:{key}", members, PENDING_TTL)
    if owned:
        send(min(it.get("urgency", 5) for it in group))
        counts["whois_dispatched"] += 1
        backlog.value = backlog.get() + 1
    return PENDING


def _status_result(status: str) -> dict:
    return {"raw": "", "parsed": {"status": status}}


def join_domain_whois(items: list[dict], settings, store, dispatch) -> list[dict]:
    """Attach cached domain WHOIS to each item; for a miss mark it pending and dispatch one lookup per
    root (dispatch(root, urgency)). Never waits for a lookup."""
    by_root: dict[str, list[dict]] = defaultdict(list)
    for it in items:
        by_root[it["r"]].append(it)
    roots = list(by_root)
    cached = store.get_many_json(["dw:" + r for r in roots])
    counts: Counter = Counter()
    backlog = _Backlog(store)
    for root, hit in zip(roots, cached):
        group = by_root[root]
        if hit is not None:
            result = hit
            counts["whois_domain_cache_hit"] += len(group)
        else:
            status = _wait_or_dispatch("dw", root, group, [it["d"] for it in group], settings, store,
                                       backlog, counts, lambda urgency, root=root: dispatch(root, urgency))
            counts["whois_domain_cache_miss" if status == PENDING else "whois_" + status] += len(group)
            result = _status_result(status)
        for it in group:
            it["dw"] = result
    store.incr(counts)
    return items


NET_LENGTHS = "ipnet:lengths"       # the prefix lengths the IP cache holds, as "4/24", "6/48"
NET_LENGTHS_REFRESH = 10.0          # seconds a process trusts its copy of them
NET_LENGTHS_RECHECK = 1.0           # ... or this many when an address is not found under them


def ip_cache_keys(ip: str, lengths: dict[int, list[int]] | None = None) -> list[str]:
    """Cache keys of the networks that may hold `ip`, most specific first ("ipnet:1.2.3.0/24"): every
    possible prefix length, or only those in `lengths` ({4: [24, 22], 6: [48]})."""
    addr = ipaddress.ip_address(ip)
    bits = addr.max_prefixlen
    if lengths is not None:
        sizes = lengths.get(addr.version, [])
    else:
        sizes = range(32, 7, -1) if bits == 32 else [128, *range(64, 15, -1)]
    # Masking the integer: 25 ip_network() objects per address were a third of the WHOIS join's time.
    value, make = int(addr), type(addr)
    return [f"ipnet:{make(value >> (bits - n) << (bits - n))}/{n}" for n in sizes]


def net_lengths(store, max_age: float = NET_LENGTHS_REFRESH) -> dict[int, list[int]]:
    """The prefix lengths cached IP answers are stored under ({4: [24, 16], 6: [48]}, longest first), from
    a copy at most `max_age` s old: an address is looked up under a few keys, not 25. (A copy missing a
    new length costs at worst a lookup task, which reads them fresh and finds the answer.)"""
    now = time.monotonic()
    copy = getattr(store, "_scout_net_lengths", None)
    if copy is None or now - copy[0] > max_age:
        by_version: dict[int, list[int]] = {}
        for member in store.get_members(NET_LENGTHS):
            version, _, n = member.partition("/")
            if version in ("4", "6") and n.isdigit():
                by_version.setdefault(int(version), []).append(int(n))
        copy = (now, {v: sorted(ns, reverse=True) for v, ns in by_version.items()})
        store._scout_net_lengths = copy
    return copy[1]


def cached_ip_results(store, ips: list[str], fresh: bool = False) -> dict:
    """{ip: the most specific cached network answer, or None}, in one round trip for all of them."""
    lengths = net_lengths(store, 0.0 if fresh else NET_LENGTHS_REFRESH)
    out = _cached_under(store, ips, lengths)
    missing = [ip for ip in ips if out[ip] is None]
    if missing and not fresh:  # perhaps under a length cached since the copy was taken
        newer = net_lengths(store, NET_LENGTHS_RECHECK)
        if newer != lengths:
            out.update(_cached_under(store, missing, newer))
    return out


def _cached_under(store, ips: list[str], lengths) -> dict:
    keys = {ip: ip_cache_keys(ip, lengths) for ip in ips}
    hits = store.get_many_json([k for ks in keys.values() for k in ks])
    out, start = {}, 0
    for ip, ks in keys.items():
        out[ip] = next((h for h in hits[start:start + len(ks)] if h is not None), None)
        start += len(ks)
    return out


def cached_ip_result(store, ip: str, fresh: bool = False):
    return cached_ip_results(store, [ip], fresh)[ip]


def cache_ip_result(store, networks: list, result: dict, ttl: float) -> None:
    """Cache an IP answer under each network (ipaddress objects) it covers; note their prefix lengths."""
    for net in networks:
        store.set_json(f"ipnet:{net}", result, ttl)
    store.add_members(NET_LENGTHS, sorted({f"{net.version}/{net.prefixlen}" for net in networks}),
                      max(ttl, PENDING_TTL))
    store.__dict__.pop("_scout_net_lengths", None)   # this process sees the new lengths at once


def ips_of(item: dict, settings) -> list[str]:
    dns = item.get("dns") or {}
    ips = list(dns.get("a_records", []))
    if settings.ip_whois_aaaa:
        ips += dns.get("aaaa_records", [])
    return ips


def join_ip_whois(items: list[dict], settings, store, dispatch) -> list[dict]:
    """Attach cached IP WHOIS per address; dispatch one lookup per uncached address."""
    by_ip: dict[str, list[dict]] = defaultdict(list)
    for it in items:
        it["iw"] = {}
        for ip in ips_of(it, settings):
            by_ip[ip].append(it)
    counts: Counter = Counter()
    backlog = _Backlog(store)
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
                status = _wait_or_dispatch(
                    "ip", ip, group, [f"{it['r']}|{it['d']}" for it in group], settings, store, backlog,
                    counts, lambda urgency, ip=ip, root=group[0]["r"]: dispatch(ip, root, urgency))
                counts["whois_ip_cache_miss" if status == PENDING else "whois_" + status] += 1
                result = {"raw": "", "info": {"status": status}}
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
    store.incr({"whois_ip_queries": 1, f"whois_server:{info.get('server') or '?'}": 1,
                "whois_target_refused": len(result.get("refused") or ())})
    return result, True


# ---------------------------------------------------------------- save

def _fill_waiting(doc: dict, store, settings) -> None:
    """Under the document's lock: a WHOIS answer that landed meanwhile replaces `pending`."""
    parsed = doc.get("domain_whois_parsed") or {}
    if parsed.get("status") == PENDING:
        hit = store.get_json("dw:" + doc["root_domain"])
        if hit is not None:
            doc["domain_whois"] = hit.get("raw", "")
            doc["domain_whois_parsed"] = hit.get("parsed", {})
    for ip, info in list((doc.get("ip_info") or {}).items()):
        if info.get("status") == PENDING:
            hit = cached_ip_result(store, ip)
            if hit is not None:
                doc["ip_whois"][ip] = hit.get("raw", "")
                doc["ip_info"][ip] = hit.get("info", {})


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


def save_items(items: list[dict], settings, store, on_saved=None) -> int:
    """Write (or update) every item's document. Raises on the first write error (the task retries the
    batch; writes are idempotent)."""
    now = time.time()
    counts: Counter = Counter()
    for it in items:
        doc = output.new_document(it, now)

        def change(old, doc=doc):
            _fill_waiting(doc, store, settings)
            if old:
                _keep_known_whois(old, doc)
            counts["saved_updated" if old else "saved_new"] += 1
            return output.merge_documents(old, doc)

        save_stage.update_document(settings.output_dir, it["r"], it["d"], change,
                                   fsync=settings.save_fsync)
        if on_saved is not None:
            on_saved(doc)
    counts["domains_saved"] = len(items)
    store.incr(counts)
    ledger.settle(store, items)
    return len(items)


def apply_whois_result(kind: str, key: str, result: dict, settings, store, keep_pending: bool = False) -> int:
    """A lookup landed: update every saved document waiting for it. -> documents updated."""
    pending_key = ("pending:dw:" if kind == "domain" else "pending:ip:") + key
    members = store.get_members(pending_key) if keep_pending else store.pop_members(pending_key)
    updated = 0
    for member in members:
        if kind == "domain":
            root, domain = key, member
        else:
            root, _, domain = member.partition("|")

        def change(old):
            if old is None:
                return None  # not written yet: the save stage reads the cache under the same lock
            new = dict(old)
            if kind == "domain":
                old_status = (old.get("domain_whois_parsed") or {}).get("status")
                if old_status in ANSWERED and (result.get("parsed") or {}).get("status") not in ANSWERED:
                    return None  # a failed lookup never hides an earlier answer
                new["domain_whois"] = result.get("raw", "")
                new["domain_whois_parsed"] = result.get("parsed", {})
            else:
                if key not in (old.get("ip_info") or {}):
                    return None  # the domain moved to other addresses meanwhile
                if (old["ip_info"][key].get("status") in ANSWERED
                        and (result.get("info") or {}).get("status") not in ANSWERED):
                    return None
                new["ip_whois"] = dict(old.get("ip_whois") or {})
                new["ip_info"] = dict(old.get("ip_info") or {})
                new["ip_whois"][key] = result.get("raw", "")
                new["ip_info"][key] = result.get("info", {})
            return output.order_document(new)

        if save_stage.update_document(settings.output_dir, root, domain, change,
                                      fsync=settings.save_fsync) is not None:
            updated += 1
    store.incr({"documents_whois_updated": updated})
    return updated


# ---------------------------------------------------------------- failed tasks

def record_failure(store, *, task: str, stage: str, args: list, kwargs: dict | None = None,
                   exc: BaseException | str, attempts: int, tb: str | None = None,
                   queue: str | None = None) -> str:
    """Put a task that used up its retries in the failed store, with all needed to run it again."""
    entry_id = uuid.uuid4().hex[:12]
    items = args[0] if stage in STAGES and args and isinstance(args[0], list) else []
    entry = {
        "id": entry_id, "task": task, "stage": stage, "queue": queue, "args": args,
        "kwargs": kwargs or {}, "rest_of_chain": rest_of_chain(stage),
        "exception": exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}",
        "traceback": tb if tb is not None else (
            "" if isinstance(exc, str) else "".join(traceback.format_exception(exc))),
        "time": time.time(), "attempts": attempts,
        "domains": [it.get("d") for it in items if isinstance(it, dict)],
    }
    store.put_failed(entry_id, entry)
    ledger.settle(store, items)  # recorded here: no longer in flight
    store.incr({"domains_failed": len(entry["domains"]), "tasks_failed": 1, f"tasks_failed:{stage}": 1})
    log.warning("task %s failed for good after %d attempts (%s); recorded as %s",
                task, attempts, entry["exception"][:200], entry_id)
    return entry_id

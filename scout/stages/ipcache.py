"""The IP WHOIS cache, keyed by network: an answer is stored under every network it covers, so any later
address inside an answered network is a hit without a query.

Keys are `ipnet:<network>/<length>`; the prefix lengths in use are noted in the set NET_LENGTHS, so an
address is looked up under the few lengths cached answers have, not under every possible one.
"""
from __future__ import annotations

import functools
import ipaddress
import time

from scout.stages.document import PENDING_TTL

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
        out[ip] = next((h for h in hits[start:start + len(ks)] if h is not None and _holds_for(h, ip)), None)
        start += len(ks)
    return out


@functools.lru_cache(maxsize=4096)
def _network(cidr: str):
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _holds_for(hit: dict, ip: str) -> bool:
    """A cached answer serves `ip` only when its ASN prefix (if any) contains it: an answer stored under
    a whole RDAP network by an older version carried one address's ASN data for all of them."""
    cidr = (hit.get("info") or {}).get("asn_cidr") if isinstance(hit, dict) else None
    if not cidr:
        return True
    net = _network(cidr)
    return net is not None and ipaddress.ip_address(ip) in net


def cached_ip_result(store, ip: str, fresh: bool = False):
    return cached_ip_results(store, [ip], fresh)[ip]


def cache_ip_result(store, networks: list, result: dict, ttl: float) -> None:
    """Cache an IP answer under each network (ipaddress objects) it covers; note their prefix lengths."""
    for net in networks:
        store.set_json(f"ipnet:{net}", result, ttl)
    store.add_members(NET_LENGTHS, sorted({f"{net.version}/{net.prefixlen}" for net in networks}),
                      max(ttl, PENDING_TTL))
    store.__dict__.pop("_scout_net_lengths", None)   # this process sees the new lengths at once

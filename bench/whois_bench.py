"""WHOIS: lookups made per domain enriched, on a realistic workload (many subdomains per root, many
addresses per network), through the real pipeline functions (join_domain_whois, join_ip_whois,
lookup_domain_cached, lookup_ip_cached with scout.whois's RDAP lookups) against a local RDAP server
(tests/servers/rdap.py) and nsd serving Team Cymru-style origin TXT records (each /24 network is its own
BGP prefix, as the cache is keyed by the narrower of RDAP network and BGP prefix). A share of the names
are platform users' names under private suffixes (`u1.github.io`, `s2.herokuapp.com`): domain WHOIS asks
about their registered domain (ICANN section of the PSL). Server requests are counted.

Baseline: what a per-domain enricher asks, one domain lookup and one lookup per address per domain; for
the private-suffix names, one lookup per root domain (private section included: how scout keyed domain
WHOIS before issue 14).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from pathlib import Path


PRIVATE_SUFFIXES = ("github.io", "herokuapp.com", "vercel.app", "myshopify.com")


def bench_whois(tmp: Path, n_domains: int, subs_per_root: int = 8, ips_per_net: int = 40,
                batch: int = 50, private_share: float = 0.2) -> dict:
    from bench.services import nsd
    from scout.stages import whois as whois_stage
    from scout.config import Settings
    from scout.store import MemoryStore
    from scout.whois import lookup_domain, lookup_ip
    from tests.servers.rdap import ARIN_8_8_8, RdapServer

    rng = random.Random(5)
    n_roots = max(1, n_domains // subs_per_root)
    roots = [f"w{rng.choice(['shop', 'mail', 'cloud', 'pay'])}{i}.{('com', 'net', 'org')[i % 3]}"
             for i in range(n_roots)]
    n_ips = max(1, n_domains // 2)
    n_nets = max(1, n_ips // ips_per_net)
    nets = [f"{8 + k // 200}.{k % 200}.{rng.randint(0, 255)}" for k in range(n_nets)]
    ips = [f"{nets[k % n_nets]}.{1 + (k // n_nets) % 250}" for k in range(n_ips)]
    items = []
    n_private = int(n_domains * private_share)
    for i in range(n_domains - n_private):
        root = roots[i % n_roots]
        name = root if i < n_roots else f"h{i}.{root}"
        items.append({"d": name, "r": root, "seen": time.time(), "urgency": 5,
                      "dns": {"a_records": [ips[rng.randrange(n_ips)]]}})
    for i in range(n_private):   # each a platform user of its own (a root of its own, private section)
        user = f"u{i}.{PRIVATE_SUFFIXES[i % len(PRIVATE_SUFFIXES)]}"
        items.append({"d": user, "r": user, "seen": time.time(), "urgency": 5,
                      "dns": {"a_records": [ips[rng.randrange(n_ips)]]}})
    rng.shuffle(items)

    srv = RdapServer().start()
    try:
        for root in roots + list(PRIVATE_SUFFIXES):
            srv.route(f"/com/domain/{root}", "domain")
        for net in nets:
            sample = copy.deepcopy(ARIN_8_8_8)
            sample.update(startAddress=f"{net}.0", endAddress=f"{net}.255", handle=f"NET-{net.replace('.', '-')}-0",
                          cidr0_cidrs=[{"v4prefix": f"{net}.0", "length": 24}])
            for k in range(256):
                srv.route(f"/arin/ip/{net}.{k}", "ip", sample=sample)
        boot = tmp / "whois-bootstrap"
        boot.mkdir(parents=True, exist_ok=True)
        pub = "2026-10-01T00:00:00Z"
        (boot / "dns.json").write_text(json.dumps({"version": "1.0", "publication": pub, "description": "bench",
                                                   "services": [[["com", "net", "org", "io", "app"],
                                                                 [srv.base + "com/"]]]}))
        (boot / "ipv4.json").write_text(json.dumps({"version": "1.0", "publication": pub, "description": "bench",
                                                    "services": [[[f"{a}.0.0.0/8" for a in range(8, 16)],
                                                                  [srv.base + "arin/"]]]}))
        (boot / "ipv6.json").write_text(json.dumps({"version": "1.0", "publication": pub, "description": "bench",
                                                    "services": []}))
        cymru = ("@ IN SOA ns.asn.cymru.com. hostmaster.asn.cymru.com. 1 3600 600 86400 300\n"
                 "@ IN NS ns.asn.cymru.com.\nns IN A 127.0.0.1\n"
                 + "".join(f'*.{".".join(reversed(net.split(".")))}.origin IN TXT '
                           f'"64{k % 1000:03d} | {net}.0/24 | US | arin | 2020-01-01"\n' for k, net in enumerate(nets)))
        with nsd({"asn.cymru.com.": cymru}, tmp / "nsd-cymru") as (server, port):
            s = dataclasses.replace(Settings(), rdap_bootstrap_dir=str(boot), whois_timeout=5.0,
                                    whois_referral_server="127.0.0.1:9", dns_servers=(("127.0.0.1", port),),
                                    dns_timeout=2.0, dns_retries=1, whois_max_backlog=10 ** 9)
            store = MemoryStore()
            t = time.perf_counter()
            statuses: dict[str, int] = {}
            for k in range(0, len(items), batch):
                chunk = [dict(it) for it in items[k:k + batch]]
                todo_d, todo_i = [], []
                whois_stage.join_domain_whois(chunk, s, store, lambda root, urg: todo_d.append(root))
                whois_stage.join_ip_whois(chunk, s, store, lambda ip, root, urg: todo_i.append(ip))
                # what the lookup workers then do for each dispatched task
                for root in todo_d:
                    res, _ = whois_stage.lookup_domain_cached(root, s, store, None, lookup_domain)
                    st = (res.get("parsed") or {}).get("status", "?")
                    statuses["domain:" + st] = statuses.get("domain:" + st, 0) + 1
                    store.release("dw:" + root)
                for ip in todo_i:
                    res, _ = whois_stage.lookup_ip_cached(ip, s, store, None, lookup_ip)
                    st = (res.get("info") or {}).get("status", "?")
                    statuses["ip:" + st] = statuses.get("ip:" + st, 0) + 1
                    store.release("ip:" + ip)
            secs = time.perf_counter() - t
        requests = list(srv.requests)
    finally:
        srv.stop()
    dom_req = sum(1 for _, p in requests if p.startswith("/com/"))
    private_req = sum(1 for _, p in requests if p.rsplit("/", 1)[-1] in PRIVATE_SUFFIXES)
    ip_req = sum(1 for _, p in requests if p.startswith("/arin/"))
    baseline = n_domains + sum(len(it["dns"]["a_records"]) for it in items)
    qpd = len(requests) / n_domains
    return {"whois_queries_per_domain": round(qpd, 4), "whois_baseline_queries_per_domain": round(baseline / n_domains, 3),
            "whois_ratio": round(len(requests) / baseline, 4), "whois_domains": n_domains, "whois_roots": n_roots,
            "whois_ips": len({it["dns"]["a_records"][0] for it in items}), "whois_networks": n_nets,
            "whois_domain_requests": dom_req, "whois_ip_requests": ip_req, "whois_seconds": round(secs, 2),
            "whois_statuses": statuses,
            # private-suffix names: lookups made vs one per root (the keying before issue 14)
            "whois_private_names": n_private, "whois_private_requests": private_req,
            "whois_private_baseline_requests": n_private,
            "whois_private_ratio": round(private_req / n_private, 4) if n_private else None}


def bench_guard(tmp: Path, n: int = 200) -> dict:
    """What checking targets costs (scout.whois.targets): RDAP lookups of a registry whose answer links a
    registrar (two requests each), with both servers named by host names that resolve through DNS_SERVER
    (nsd on loopback: A and AAAA per host, checked), against the same lookups with the servers given as
    addresses (no resolution). Same servers, same run; rounds alternate."""
    from bench.services import nsd
    from scout.config import Settings, parse_networks
    from scout.whois import lookup_domain
    from tests.servers.rdap import RdapServer

    srv = RdapServer().start()
    zone = ("@ IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300\n@ IN NS ns.bench.test.\n"
            "ns IN A 127.0.0.1\nregistry IN A 127.0.0.1\nregistrar IN A 127.0.0.1\n")
    try:
        with nsd({"bench.test.": zone}, tmp / "nsd-guard") as (_, port):
            times: dict[str, float] = {"address": 0.0, "name": 0.0}
            for mode, host in (("address", "127.0.0.1"), ("name", "registry.bench.test")) * 2:
                other = "127.0.0.1" if mode == "address" else "registrar.bench.test"
                boot = tmp / f"guard-boot-{mode}"
                boot.mkdir(parents=True, exist_ok=True)
                for f, svc in (("dns.json", [[["com"], [f"http://{host}:{srv.port}/reg/"]]]),
                               ("ipv4.json", []), ("ipv6.json", [])):
                    (boot / f).write_text(json.dumps({"services": svc}))
                s = dataclasses.replace(Settings(), rdap_bootstrap_dir=str(boot), whois_timeout=5.0,
                                        dns_servers=(("127.0.0.1", port),), dns_timeout=2.0,
                                        whois_allow_networks=parse_networks("WHOIS_ALLOW_NETWORKS", "127.0.0.1/32"))
                names = [f"g{mode}{i}.com" for i in range(n // 2)]
                for name in names:
                    srv.route(f"/reg/domain/{name}", "domain",
                              related=f"http://{other}:{srv.port}/registrar/domain/{name}")
                    srv.route(f"/registrar/domain/{name}", "registrar_domain")
                t = time.perf_counter()
                for name in names:
                    res = lookup_domain(name, s)
                    assert res["parsed"]["status"] == "ok" and "registrar_status" not in res["parsed"], res["parsed"]
                times[mode] += time.perf_counter() - t
                srv.routes.clear()
    finally:
        srv.stop()
    by_address, by_name = times["address"] / n * 1000, times["name"] / n * 1000
    return {"whois_guard_lookup_ms_by_name": round(by_name, 3), "whois_guard_lookup_ms_by_address": round(by_address, 3),
            "whois_guard_ratio": round(by_name / by_address, 3)}

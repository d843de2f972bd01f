"""WHOIS in the pipeline, end to end: real `celery worker` processes on Redis (db 5), real nsd, local RDAP
and port-43 servers (bootstrap files and WHOIS_REFERRAL_SERVER point at them), documents read from disk.

Issue 3: documents never wait for WHOIS (saved `pending`, updated when the lookup lands), one lookup per
root / network, shared caches, rate limits per worker, 429 retries, WHOIS_IPS source binding, backlog
bound, hostile servers, `scout run --source` finishing with complete documents.
Issue 8: lookups ordered by watchlist urgency on Redis priorities, WHOIS_MIN_SCORE, ENRICH=watchlist.
"""
from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from tests.conftest import (FIXTURE, emptied_redis, fixture_domains, fixture_roots, need_nsd, read_documents,
                            run_scout, scout_env, validate_documents, wait_for)
from tests.servers.base import ALLOW_NETWORKS, start_on_referral_port
from tests.servers.dns_nsd import start_nsd, stop_nsd
from tests.servers.rdap import ARIN_8_8_8, write_bootstrap
from tests.support.feed import dns_entries_file, produce
from tests.support.whois import (REDIS_DB5, TimedRdap, TimedWhois43, counters, forget_seen, public_zones, route_of,
                                 start_core, start_lookup_cli, wstatus)

FIXTURE_RDAP_TLDS = ("example", "test", "invalid")   # com, net, org go to port 43


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def redis5():
    """Redis db 5 (this area's database) emptied before and after: broker, caches and counters."""
    yield from emptied_redis(REDIS_DB5)


@pytest.fixture
def rdap():
    srv = TimedRdap().start()
    srv.default = ("domain", {})          # every domain is registered unless routed otherwise
    yield srv
    srv.stop()


@pytest.fixture
def port43():
    """(referral server, registry): IANA-style referral to a registry that answers with full data."""
    registry = start_on_referral_port(TimedWhois43)     # named by a referral: port 4343, allowed network
    registry.default = ("registrar", {})
    iana = TimedWhois43().start()
    iana.default = ("iana", {"referral": registry.label})
    yield iana, registry
    iana.stop()
    registry.stop()


@pytest.fixture(scope="module")
def public_dns(tmp_path_factory):
    """nsd for the IP WHOIS tests: public-looking addresses under com./net./org. and Cymru answers."""
    need_nsd()
    zones = public_zones(
        {"com.": ["ip-a 300 IN A 8.8.8.8", "ip-b 300 IN A 8.8.8.9", "ip-c 300 IN A 8.8.8.8",
                  "mail.ip-c 300 IN A 8.8.8.9"],
         "net.": ["ip-d 300 IN A 8.8.8.8"],
         "org.": []},
        ['8.8.8.8.origin IN TXT "15169 | 8.8.8.0/24 | US | arin | 2023-12-28"',
         '9.8.8.8.origin IN TXT "15169 | 8.8.8.0/24 | US | arin | 2023-12-28"'])
    proc, port = start_nsd(zones, tmp_path_factory.mktemp("nsd-public"))
    yield f"127.0.0.1:{port}"
    stop_nsd(proc)


def make_env(tmp_path, redis_url, dns, rdap, port43, tlds, **extra):
    boot = write_bootstrap(tmp_path / f"boot-{len(list(tmp_path.glob('boot-*')))}",
                           {t: rdap.base + "reg/" for t in tlds}, {"8.0.0.0/8": rdap.base + "arin/"})
    env = dict(BROKER_URL=redis_url, REDIS_URL=redis_url, DNS_SERVER=dns, RDAP_BOOTSTRAP_DIR=str(boot),
               WHOIS_REFERRAL_SERVER=port43[0].label, WHOIS_ALLOW_NETWORKS=ALLOW_NETWORKS,
               OUTPUT_DIR=str(tmp_path / "out"), DNS_WORKERS=8,
               WHOIS_WORKERS=2, WHOIS_TIMEOUT="1s", DOMAIN_WHOIS_RATE="20ms", IP_WHOIS_RATE="20ms",
               BATCH_SIZE=8, TASK_MAX_RETRIES=3)
    env.update(extra)
    return scout_env(**env)


def docs_of(env) -> dict[str, dict]:
    return read_documents(env["OUTPUT_DIR"])


def pending(docs) -> list[str]:
    return sorted(d for d, doc in docs.items()
                  if wstatus(doc) == "pending" or any(i.get("status") == "pending"
                                                      for i in (doc.get("ip_info") or {}).values()))


# ---------------------------------------------------------------- issue 3: pending, landing, caches

@pytest.mark.slow
def test_documents_saved_pending_then_completed_and_repeat_run_costs_no_query(
        tmp_path, redis5, dns_server, rdap, port43, workers):
    iana, registry = port43
    rdap.route("/reg/domain/login-examplebank.invalid", "notfound")
    rdap.route("/reg/domain/secure-login-examplebank.invalid", "invalid_json")
    registry.route("example.net", "silent")                 # hostile: never answers
    env = make_env(tmp_path, redis5, dns_server, rdap, port43, FIXTURE_RDAP_TLDS)
    w = workers(env)
    start_core(w)
    expected = fixture_domains()
    roots = fixture_roots()

    # 1. No lookup worker: every document is saved at once, WHOIS pending.
    produced = produce(env, FIXTURE)
    assert produced["unique"] == len(expected) == 56
    wait_for(lambda: counters().get("domains_saved", 0) >= len(expected), 60, message="documents saved")
    docs = docs_of(env)
    assert set(docs) == expected
    validate_documents(docs)
    assert {wstatus(d) for d in docs.values()} == {"pending"}
    assert all(d["domain_whois"] == "" for d in docs.values())
    assert docs["shop-example-login.example"]["ip_info"] == {"198.51.100.10": {"status": "reserved"}}
    c = counters()
    assert c["whois_dispatched"] == len(roots) == 22          # one lookup per root, across 7 batches
    assert c["whois_domain_cache_miss"] == len(expected)
    assert not rdap.log and not iana.log                       # nothing looked up yet

    # 2. The lookup worker starts: lookups land and update every waiting document.
    start_lookup_cli(w)
    wait_for(lambda: not pending(docs_of(env)), 60, message="WHOIS landed in every document")
    wait_for(lambda: counters().get("whois_landed", 0) >= 22, 10, message="landed counter")
    docs = docs_of(env)
    validate_documents(docs)
    c = counters()
    assert c["documents_whois_updated"] == len(expected)
    rdap_roots = Counter(p.rsplit("/", 1)[-1] for p in rdap.paths("/reg/domain/"))
    w43_roots = Counter(d for _, d in iana.log)
    assert set(rdap_roots.values()) == {1} and set(w43_roots.values()) == {1}   # one lookup per root
    assert set(rdap_roots) | set(w43_roots) == roots
    assert c["whois_domain_queries"] == 22

    ok = docs["checkout.shop-example-login.example"]["domain_whois_parsed"]
    assert ok["source"] == "rdap" and ok["status"] == "ok" and ok["server"] == rdap.base + "reg/"
    assert ok["registrar"] == "RESERVED-Internet Assigned Numbers Authority"
    assert (ok["created"], ok["updated"], ok["expires"]) == (
        "1995-08-14T04:00:00Z", "2024-08-14T07:01:34Z", "2025-08-13T04:00:00Z")
    assert ok["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net"]
    assert "client delete prohibited" in ok["statuses"]
    assert '"ldhName": "SHOP-EXAMPLE-LOGIN.EXAMPLE"' in docs["checkout.shop-example-login.example"]["domain_whois"]
    p43 = docs["owa.example.com"]["domain_whois_parsed"]
    assert p43["source"] == "whois" and p43["status"] == "ok" and p43["server"] == registry.label
    assert p43["registrar"] == "Example Registrar, LLC"
    assert p43["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net", "c.iana-servers.net"]
    assert "refer:" in docs["owa.example.com"]["domain_whois"]
    assert wstatus(docs["login-examplebank.invalid"]) == "not_found"
    assert wstatus(docs["secure-login-examplebank.invalid"]) == "error: invalid rdap json"
    for name in ("cdn.example.net", "vpn.example.net", "status.example.net"):
        assert wstatus(docs[name]) == "error: timeout"       # hostile registry: bounded, still saved
    assert all(wstatus(d) in ("ok", "not_found", "error: invalid rdap json", "error: timeout")
               for d in docs.values())
    # (The silent registry holds a connection 30 s: "error: timeout" above, not a wall-clock bound, shows
    # that WHOIS_TIMEOUT=1s ended those lookups.)

    # 3. A repeat run (the de-duplication memory expired, the WHOIS cache did not): zero queries.
    forget_seen()
    before = counters()
    marks = (len(rdap.log), len(iana.log), len(registry.log))
    produce(env, FIXTURE)
    wait_for(lambda: counters().get("domains_saved", 0) >= before["domains_saved"] + len(expected), 60,
             message="repeat run saved")
    time.sleep(0.5)
    after = counters()
    assert (len(rdap.log), len(iana.log), len(registry.log)) == marks
    assert after.get("whois_domain_queries") == before.get("whois_domain_queries")
    assert after.get("whois_dispatched") == before.get("whois_dispatched")
    assert after["whois_domain_cache_hit"] - before.get("whois_domain_cache_hit", 0) == len(expected)
    docs = docs_of(env)
    assert not pending(docs)
    assert {d["seen_count"] for d in docs.values()} == {2}
    assert wstatus(docs["login-examplebank.invalid"]) == "not_found"

    # The counters operators see: `scout stats`.
    r = run_scout(["stats", "--json"], env)
    assert r.returncode == 0, r.stderr[-2000:]
    stats = json.loads(r.stdout)
    assert stats["cache_hit_rate"]["domain_whois"] == 0.5               # 56 misses, then 56 hits
    assert stats["whois_queries_per_server"] == {rdap.base + "reg/": len(rdap_roots),
                                                 registry.label: len(w43_roots)}
    assert stats["counters"]["whois_landed"] == stats["counters"]["whois_dispatched"] == 22
    assert stats["queues"]["whois.default"] == 0


# ---------------------------------------------------------------- bootstrap refresh at lookup worker start

def test_lookup_worker_start_refreshes_bootstrap_in_background(tmp_path, monkeypatch):
    import dataclasses

    from celery.signals import worker_init

    from scout.stages import tasks
    from scout.config import Settings

    assert any(getattr(r[1], "__name__", "") == "_refresh_bootstrap_on_start"
               or "_refresh_bootstrap_on_start" in repr(r[1]) for r in worker_init.receivers)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with TimedRdap() as srv:
        pub = {"version": "1.0", "publication": "2026-10-01T00:00:00Z", "services": [[["zz"], ["https://z/"]]]}
        for f in ("dns.json", "ipv4.json", "ipv6.json"):
            srv.route("/iana/" + f, "json", obj=pub)
        srv.route("/iana/dns.json", "drip", interval=0.05, max_wait=1.0)   # slow: the start must not wait
        base = srv.base + "iana/"
        configured = dataclasses.replace(Settings(), rdap_bootstrap_dir=str(tmp_path))
        assert tasks.start_bootstrap_refresh(configured, ["whois.default"], base_url=base) is None
        plain = Settings()
        assert tasks.start_bootstrap_refresh(plain, ["dns", "whois", "save"], base_url=base) is None
        thread = tasks.start_bootstrap_refresh(plain, ["whois.default"], base_url=base)
        assert thread is not None and thread.is_alive()     # returned while dns.json still drips in
        thread.join(15)
        assert not thread.is_alive()
    cache = tmp_path / "cache" / "certstream-scout" / "rdap"
    assert json.loads((cache / "ipv4.json").read_text())["services"] == [[["zz"], ["https://z/"]]]
    assert sorted(p for _, _, p in srv.log) == ["/iana/dns.json", "/iana/ipv4.json", "/iana/ipv6.json"]


# ---------------------------------------------------------------- embedded replay: complete documents

@pytest.mark.slow
def test_embedded_replay_ends_with_complete_documents(tmp_path, dns_server, rdap, port43):
    """`scout run --source` (no broker, no Redis) returns only once the lookups it started have landed."""
    env = make_env(tmp_path, "", dns_server, rdap, port43, FIXTURE_RDAP_TLDS, DOMAIN_WHOIS_RATE="50ms")
    for k in ("BROKER_URL", "REDIS_URL"):
        env.pop(k)
    r = run_scout(["run", "--source", str(FIXTURE)], env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    docs = docs_of(env)
    assert summary["saved"] == len(docs) == 56 and summary["whois_lookups"] == 22
    assert not pending(docs), pending(docs)
    assert {wstatus(d) for d in docs.values()} == {"ok"}
    assert len(rdap.paths("/reg/domain/")) + len(port43[0].log) == 22
    # 22 lookups at one per 50 ms on one source address: the replay waited for them.
    assert summary["seconds"] >= 21 * 0.05


# ---------------------------------------------------------------- rate limits, 429, IP network cache

@pytest.mark.slow
def test_rate_limit_429_retry_and_ip_network_cache(tmp_path, redis5, public_dns, rdap, port43, workers):
    interval = 0.3
    rdap.route("/reg/domain/busy.com", "too_many", retry_after=2)
    rdap.route("/reg/domain/limited.com", "too_many", retry_after=1)     # never recovers
    rdap.route("/arin/ip/8.8.8.8", "ip", sample=ARIN_8_8_8)
    env = make_env(tmp_path, redis5, public_dns, rdap, port43, ["com"], WHOIS_WORKERS=4,
                   DOMAIN_WHOIS_RATE=f"{int(interval * 1000)}ms", IP_WHOIS_RATE=f"{int(interval * 1000)}ms",
                   TASK_MAX_RETRIES=2)
    w = workers(env)
    start_core(w)
    start_lookup_cli(w)

    def recover():   # the server stops limiting once it has refused busy.com once
        wait_for(lambda: "/reg/domain/busy.com" in rdap.paths(), 60, 0.02, "the 429")
        rdap.route("/reg/domain/busy.com", "domain")

    import threading
    threading.Thread(target=recover, daemon=True).start()
    first = ["busy.com", "limited.com"] + [f"rl{i}.com" for i in range(6)] + ["ip-a.com"]
    produce(env, dns_entries_file(tmp_path / "a.jsonl", [first]))
    wait_for(lambda: len(docs_of(env)) == len(first) and not pending(docs_of(env)), 60,
             message="first batch complete")
    docs = docs_of(env)
    # busy.com too, after the server recovered; limited.com gave up after TASK_MAX_RETRIES retries.
    assert {d: wstatus(doc) for d, doc in docs.items()} == {d: "rate_limited" if d == "limited.com" else "ok"
                                                           for d in first}
    c = counters()
    assert c["whois_rate_limited"] == 1 + 3 and c["whois_dispatched"] == len(first) + 1   # + the IP 8.8.8.8
    assert c["whois_landed"] == c["whois_dispatched"]
    r = run_scout(["failed", "list"], env)
    assert r.returncode == 0 and "lookup_domain_whois" in r.stdout and "RateLimited" in r.stdout, r.stdout
    core_log, lookup_log = (log.read_text(errors="replace") for _, _, log in w.procs)
    assert "failed for good" in lookup_log and "failed for good" not in core_log   # retries stay on whois.default

    domain_times = [(t, p.rsplit("/", 1)[-1]) for t, _, p in rdap.log if p.startswith("/reg/domain/")]
    busy = [t for t, name in domain_times if name == "busy.com"]
    assert len(busy) == 2 and busy[1] - busy[0] >= 2.0            # Retry-After honoured (Celery retry)
    # While busy.com waited for its retry, the same worker kept looking other roots up: no slot slept.
    assert sum(1 for t, name in domain_times if busy[0] < t < busy[1] and name != "busy.com") >= 3
    limited = [t for t, name in domain_times if name == "limited.com"]
    assert len(limited) == 3 and min(b - a for a, b in zip(limited, limited[1:])) >= 1.0
    firsts: dict[str, float] = {}
    for t, name in domain_times:
        firsts.setdefault(name, t)
    starts = sorted(firsts.values())
    assert len(starts) == len(first)
    # One lookup per interval on this source address, with 4 threads free: (N-1) x interval at least.
    # (Measured at the server: allow one interval of scheduling jitter on a loaded machine.)
    gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:])]
    assert starts[-1] - starts[0] >= (len(starts) - 2) * interval, gaps
    print(f"rate limit {interval}s: {len(starts)} lookups over {starts[-1] - starts[0]:.2f}s, gaps {gaps}")
    ip = docs["ip-a.com"]["ip_info"]["8.8.8.8"]
    assert ip["status"] == "ok" and ip["asn"] == "15169" and ip["asn_cidr"] == "8.8.8.0/24"
    assert ip["asn_description"] == "GOOGLE, US" and ip["network_cidr"] == "8.8.8.0/24"
    assert ip["network_name"] == "GOGL" and ip["country"] == "US" and ip["server"] == rdap.base + "arin/"
    assert json.loads(docs["ip-a.com"]["ip_whois"]["8.8.8.8"])["handle"] == "NET-8-8-8-0-2"

    # A second address inside the answered network, and the same address again: cache hits, no query.
    before = counters()
    second = ["ip-b.com", "ip-c.com", "mail.ip-c.com"]
    produce(env, dns_entries_file(tmp_path / "b.jsonl", [second]))
    wait_for(lambda: len(docs_of(env)) == len(first) + len(second) and not pending(docs_of(env)), 60,
             message="second batch complete")
    docs = docs_of(env)
    assert rdap.paths("/arin/ip/") == ["/arin/ip/8.8.8.8"]
    c = counters()
    assert c["whois_ip_queries"] == before["whois_ip_queries"] == 1
    assert c["whois_ip_cache_hit"] - before.get("whois_ip_cache_hit", 0) == 2   # 8.8.8.9 and 8.8.8.8
    assert docs["ip-b.com"]["ip_info"]["8.8.8.9"]["network_cidr"] == "8.8.8.0/24"
    assert docs["mail.ip-c.com"]["ip_info"]["8.8.8.9"]["status"] == "ok"
    assert c["whois_dispatched"] - before["whois_dispatched"] == 2               # the two new roots only


# ---------------------------------------------------------------- WHOIS_IPS: one queue and source per address

@pytest.mark.slow
def test_whois_ips_queue_per_address_and_bound_sockets(tmp_path, redis5, public_dns, port43, workers):
    ips = ["127.0.0.2", "127.0.0.3"]
    from scout.cli.worker import check_bindable
    for ip in ips:
        check_bindable(ip)
    com = [f"bind{i}.com" for i in range(40) if route_of(f"bind{i}.com", ips) == ips[0]][:3]
    net = [f"bind{i}.net" for i in range(40) if route_of(f"bind{i}.net", ips) == ips[1]][:3]
    org = [f"bind{i}.org" for i in range(40) if route_of(f"bind{i}.org", ips) == ips[0]][:2]
    ip_root = "ip-d.net"                      # 8.8.8.8: its IP WHOIS follows the root's address
    ip_src = route_of(ip_root, ips)
    servers = {ip: TimedRdap(require_peer=ip).start() for ip in ips}   # 403 to any other peer
    iana, registry = port43
    iana.require_peer = registry.require_peer = ips[0]                # closes other peers' connections
    try:
        for s in servers.values():
            s.default = ("domain", {})
        servers[ip_src].route("/arin/ip/8.8.8.8", "ip", sample=ARIN_8_8_8)
        boot = write_bootstrap(tmp_path / "boot", {"com": servers[ips[0]].base + "reg/",
                                                   "net": servers[ips[1]].base + "reg/"},
                               {"8.0.0.0/8": servers[ip_src].base + "arin/"})
        env = make_env(tmp_path, redis5, public_dns, servers[ips[0]], port43, [], WHOIS_IPS=",".join(ips),
                       RDAP_BOOTSTRAP_DIR=str(boot))
        w = workers(env)
        start_core(w)
        for ip in ips:
            start_lookup_cli(w, ip)
        names = com + net + org + [ip_root]
        produce(env, dns_entries_file(tmp_path / "bind.jsonl", [names]))
        wait_for(lambda: len(docs_of(env)) == len(names) and not pending(docs_of(env)), 60,
                 message="all landed")
        docs = docs_of(env)
        assert {d: wstatus(doc) for d, doc in docs.items()} == {d: "ok" for d in names}
        assert docs[ip_root]["ip_info"]["8.8.8.8"]["status"] == "ok"
        for ip, srv in servers.items():
            assert srv.log and {peer for _, peer, _ in srv.log} == {ip}
        assert sorted(p.rsplit("/", 1)[-1] for _, _, p in servers[ips[0]].log if "/reg/" in p) == sorted(com)
        assert {q for _, q in iana.log} == set(org) and {p for p, _ in iana.queries} == {ips[0]}
        assert {p for p, _ in registry.queries} == {ips[0]}
        logs = w.logs()
        assert "whois.127.0.0.2" in logs and "whois.127.0.0.3" in logs   # each worker's queue banner
    finally:
        for s in servers.values():
            s.stop()


# ---------------------------------------------------------------- WHOIS_MAX_BACKLOG

@pytest.mark.slow
def test_backlog_bound_marks_new_roots_skipped_and_counts_them(tmp_path, redis5, dns_server, rdap, port43,
                                                               workers):
    from scout.names import root_domain

    env = make_env(tmp_path, redis5, dns_server, rdap, port43, FIXTURE_RDAP_TLDS, WHOIS_MAX_BACKLOG=5)
    w = workers(env)
    start_core(w, concurrency=1)          # one join at a time: the bound is exact (see README)
    produce(env, FIXTURE)
    wait_for(lambda: counters().get("domains_saved", 0) >= 56, 60, message="documents saved")
    docs = docs_of(env)
    by_status = Counter(wstatus(d) for d in docs.values())
    c = counters()
    assert c["whois_dispatched"] == 5 and not rdap.log and not port43[0].log
    waiting_roots = {root_domain(d) for d, doc in docs.items() if wstatus(doc) == "pending"}
    skipped_roots = {root_domain(d) for d, doc in docs.items() if wstatus(doc) == "skipped_backlog"}
    assert len(waiting_roots) == 5 and len(skipped_roots) == 17 and not waiting_roots & skipped_roots
    assert c["whois_skipped_backlog"] == by_status["skipped_backlog"] == 56 - by_status["pending"]
    validate_documents(docs)

    start_lookup_cli(w)
    wait_for(lambda: not pending(docs_of(env)), 60, message="the five lookups landed")
    c = counters()
    assert c["whois_landed"] == c["whois_dispatched"] == 5
    assert len(rdap.log) + len(port43[0].log) == 5
    docs = docs_of(env)
    assert {root_domain(d) for d, doc in docs.items() if wstatus(doc) == "ok"} == waiting_roots

    # The backlog drained: the next sightings of skipped roots are looked up again (up to the bound).
    forget_seen()
    produce(env, FIXTURE)
    wait_for(lambda: counters().get("domains_saved", 0) >= 112 and not pending(docs_of(env)), 60,
             message="second pass")
    c = counters()
    assert c["whois_dispatched"] >= 10 and c["whois_landed"] == c["whois_dispatched"]
    docs = docs_of(env)
    assert len({root_domain(d) for d, doc in docs.items() if wstatus(doc) == "ok"}) == c["whois_dispatched"]


# ---------------------------------------------------------------- issue 8: priority, min score, enrich

WATCHLIST = """keywords:
  bank: 50
watched_domains:
  top0.com: 100
  top1.com: 100
  top2.com: 100
"""


@pytest.mark.slow
def test_high_score_roots_are_looked_up_first(tmp_path, redis5, public_dns, rdap, port43, workers):
    wl = tmp_path / "watchlist.yaml"
    wl.write_text(WATCHLIST)
    env = make_env(tmp_path, redis5, public_dns, rdap, port43, ["com"], WATCHLIST_FILE=str(wl),
                   WHOIS_WORKERS=1, DOMAIN_WHOIS_RATE="50ms")
    w = workers(env)
    start_core(w)
    tiers = [[f"low{i}.com" for i in range(8)], [f"bank{i}.com" for i in range(4)],
             [f"top{i}.com" for i in range(3)]]
    sent = 0
    for n, names in enumerate(tiers):          # the lowest scores reach the WHOIS queue first
        produce(env, dns_entries_file(tmp_path / f"tier{n}.jsonl", [names]))
        sent += len(names)
        wait_for(lambda: counters().get("whois_dispatched", 0) == sent, 30, message=f"tier {n} dispatched")
    docs = docs_of(env)
    assert {d: (doc["score"], wstatus(doc)) for d, doc in docs.items() if d in ("low0.com", "bank0.com", "top0.com")} \
        == {"low0.com": (0, "pending"), "bank0.com": (50, "pending"), "top0.com": (100, "pending")}
    start_lookup_cli(w)                        # the lookup worker was stopped until now
    wait_for(lambda: not pending(docs_of(env)), 60, message="all landed")
    order = [p.rsplit("/", 1)[-1] for p in rdap.paths("/reg/domain/")]
    assert len(order) == 15
    assert set(order[:3]) == set(tiers[2]) and set(order[3:7]) == set(tiers[1]) and set(order[7:]) == set(tiers[0]), order


@pytest.mark.slow
def test_whois_min_score_and_enrich_watchlist(tmp_path, public_dns, rdap, port43):
    wl = tmp_path / "watchlist.yaml"
    wl.write_text(WATCHLIST)
    env = make_env(tmp_path, "", public_dns, rdap, port43, ["com"], WATCHLIST_FILE=str(wl),
                   ENRICH="watchlist", WHOIS_MIN_SCORE=60)
    for k in ("BROKER_URL", "REDIS_URL"):
        env.pop(k)
    names = ["low0.com", "low1.com", "bank0.com", "top0.com", "www.top1.com"]
    r = run_scout(["run", "--source", str(dns_entries_file(tmp_path / "f.jsonl", [names]))], env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    docs = docs_of(env)
    assert set(docs) == {"bank0.com", "top0.com", "top1.com"}            # low*: no match, never enqueued
    assert summary["skipped"]["names_skipped_not_watched"] == 2
    assert wstatus(docs["bank0.com"]) == "skipped_low_score"              # 50 < WHOIS_MIN_SCORE
    assert wstatus(docs["top0.com"]) == wstatus(docs["top1.com"]) == "ok"
    assert sorted(rdap.paths("/reg/domain/")) == ["/reg/domain/top0.com", "/reg/domain/top1.com"]

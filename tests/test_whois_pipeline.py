"""WHOIS in the pipeline, end to end: real `celery worker` processes on Redis (db 5), real nsd, local RDAP
and port-43 servers (bootstrap files and WHOIS_REFERRAL_SERVER point at them), documents read from disk.

Issue 3: documents never wait for WHOIS (saved `pending`, updated when the lookup lands), one lookup per
root / network, shared caches, rate limits per worker, 429 retries, WHOIS_IPS source binding, backlog
bound, hostile servers, `scout run --source` finishing with complete documents.
Issue 8: lookups ordered by watchlist urgency on Redis priorities, WHOIS_MIN_SCORE, ENRICH=watchlist.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from tests.conftest import (FIXTURE, need_service, read_documents, run_scout, scout_env, validate_documents,
                            wait_for)
from tests.servers.dns_nsd import find_nsd, start_nsd, stop_nsd
from tests.servers.rdap import ARIN_8_8_8
from tests.whois_helpers import (REDIS_DB5, TimedRdap, TimedWhois43, counters, dns_entries_file, forget_seen,
                                 public_zones, route_of, start_core, start_lookup_cli, stop_proc,
                                 write_bootstrap, wstatus)

FIXTURE_RDAP_TLDS = ("example", "test", "invalid")   # com, net, org go to port 43


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def redis5():
    """Redis db 5 (this area's database) emptied before and after: broker, caches and counters."""
    need_service("Redis", 6379)
    import redis

    r = redis.Redis.from_url(REDIS_DB5)
    r.flushdb()
    yield REDIS_DB5
    r.flushdb()


@pytest.fixture
def rdap():
    srv = TimedRdap().start()
    srv.default = ("domain", {})          # every domain is registered unless routed otherwise
    yield srv
    srv.stop()


@pytest.fixture
def port43():
    """(referral server, registry): IANA-style referral to a registry that answers with full data."""
    registry = TimedWhois43().start()
    registry.default = ("registrar", {})
    iana = TimedWhois43().start()
    iana.default = ("iana", {"referral": registry.label})
    yield iana, registry
    iana.stop()
    registry.stop()


@pytest.fixture(scope="module")
def public_dns(tmp_path_factory):
    """nsd for the IP WHOIS tests: public-looking addresses under com./net./org. and Cymru answers."""
    if not find_nsd():
        if os.environ.get("CI"):
            pytest.fail("nsd is not installed (scripts/setup.sh installs it)")
        pytest.skip("nsd not installed")
    zones = public_zones(
        {"com.": ["ip-a 300 IN A 8.8.8.8", "ip-b 300 IN A 8.8.8.9", "ip-c 300 IN A 8.8.8.8",
                  "www.ip-c 300 IN A 8.8.8.9"],
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
               WHOIS_REFERRAL_SERVER=port43[0].label, OUTPUT_DIR=str(tmp_path / "out"), DNS_WORKERS=8,
               WHOIS_WORKERS=2, WHOIS_TIMEOUT="1s", DOMAIN_WHOIS_RATE="20ms", IP_WHOIS_RATE="20ms",
               BATCH_SIZE=8, TASK_MAX_RETRIES=3)
    env.update(extra)
    return scout_env(**env)


def produce(env, source) -> dict:
    r = run_scout(["produce", "--source", str(source)], env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def fixture_domains() -> set[str]:
    from scout.frames import parse_frame
    from scout.names import normalise_domain

    out = set()
    for line in open(FIXTURE):
        for raw in parse_frame(line).names:
            name, _ = normalise_domain(raw, True)
            if name:
                out.add(name)
    return out


def docs_of(env) -> dict[str, dict]:
    return read_documents(env["OUTPUT_DIR"])


def pending(docs) -> list[str]:
    return sorted(d for d, doc in docs.items()
                  if wstatus(doc) == "pending" or any(i.get("status") == "pending"
                                                      for i in (doc.get("ip_info") or {}).values()))


# ---------------------------------------------------------------- issue 3: pending, landing, caches

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
    roots = {doc_root for doc_root in (__import__("scout.names", fromlist=["x"]).root_domain(d) for d in expected)}

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
    t0 = time.monotonic()
    start_lookup_cli(w)
    wait_for(lambda: not pending(docs_of(env)), 60, message="WHOIS landed in every document")
    wait_for(lambda: counters().get("whois_landed", 0) >= 22, 10, message="landed counter")
    landed_after = time.monotonic() - t0
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
    assert landed_after < 30

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


# ---------------------------------------------------------------- bootstrap refresh at lookup worker start

def test_lookup_worker_start_refreshes_bootstrap_in_background(tmp_path, monkeypatch):
    import dataclasses

    from celery.signals import worker_init

    from scout import tasks
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

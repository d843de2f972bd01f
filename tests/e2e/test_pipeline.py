"""Issue 2: the pipeline end to end, and its pure parts.

Real parts only: nsd for DNS, Redis as broker, `celery worker` processes, the replay server as
certstream, local RDAP for WHOIS (answers not_found, so nothing leaves the machine).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scout.stages import document as output
from scout.config import load_settings
from scout.sources.frames import parse_frame
from scout.names import normalise_domain, root_domain
from tests.conftest import (FIXTURE, ROOT, fixture_domains, read_documents, run_scout, scout_env, validate_documents,
                            wait_for)
from tests.servers.processes import reading, stop_gracefully
from tests.support.zones import EXPECTED


# ------------------------------------------------------------------ pure parts

@pytest.mark.parametrize("raw, expected", [
    ("*.WWW.Example.COM.", ("example.com", None)),
    ("www.shop-example-login.example", ("shop-example-login.example", None)),
    ("Mail.Example.org", ("mail.example.org", None)),
    ("portal.example.org.", ("portal.example.org", None)),
    ("bücher.example", ("xn--bcher-kva.example", None)),
    ("_dmarc.example.com", ("_dmarc.example.com", None)),
    ("203.0.113.7", (None, "ip_address")),
    ("2001:db8::1", (None, "bad_chars")),
    ("../../etc/passwd", (None, "bad_chars")),
    ("a/b", (None, "bad_chars")),
    ("a\x00b.example", (None, "bad_chars")),
    ("x" * 300, (None, "too_long")),
    ("a." + "b" * 64 + ".com", (None, "label_too_long")),
    ("", (None, "empty")),
    ("localhost", (None, "single_label")),
    (42, (None, "not_a_string")),
])
def test_normalise_domain(raw, expected):
    assert normalise_domain(raw) == expected


def test_strip_www_is_switchable():
    assert normalise_domain("www.example.com", strip_www=False) == ("www.example.com", None)


def test_root_domain_uses_public_suffix_list_offline():
    assert root_domain("a.b.example.co.uk") == "example.co.uk"
    assert root_domain("portal.example.org") == "example.org"
    assert root_domain("login.examplebank-secure-verify.test") == "examplebank-secure-verify.test"


def test_frame_kinds_of_the_fixture():
    kinds = [parse_frame(line).skip for line in FIXTURE.read_text().splitlines()]
    assert kinds.count("heartbeat") == 4
    assert kinds.count("empty") == 2          # the empty dns_entries and the cert with no names
    full = parse_frame(FIXTURE.read_text().splitlines()[0])
    assert full.certificate["type"] == "precert" and full.certificate["sha256"].startswith("E0:7C")
    assert full.certificate["not_before"].endswith("Z")


@pytest.mark.parametrize("text, reason", [
    ("not json", "bad_json"), ("[1,2]", "unknown"), ('{"message_type":"x"}', "unknown"),
    ('{"message_type":"dns_entries","data":"a.example"}', "malformed"),
    ('{"message_type":"certificate_update","data":{"leaf_cert":[]}}', "malformed"),
    ("[" * 100000, "bad_json"),
])
def test_bad_frames_have_a_reason(text, reason):
    assert parse_frame(text).skip == reason


def test_document_path_stays_inside_output_dir(tmp_path):
    p = output.document_path(tmp_path, "example.com", "www.example.com")
    assert p == tmp_path.resolve() / "example.com" / "www.example.com.json"
    long = ("a" * 60 + ".") * 4 + "example"
    p = output.document_path(tmp_path, "example", long)
    assert p.name.startswith("_h_") and p.parent.parent == tmp_path.resolve()
    for evil in ("..", ".hidden", "a/../../b"):
        assert output.document_path(tmp_path, "x.example", evil).parent.parent == tmp_path.resolve()


def test_merge_keeps_first_seen_and_counts_a_sighting_once():
    item = {"d": "a.example", "r": "a.example", "seen": 1000.0, "dns": {}}
    first = output.merge_documents(None, output.new_document(item, 1001.0))
    again = output.merge_documents(first, output.new_document(item, 1002.0))  # redelivery
    assert again["seen_count"] == 1
    later = output.merge_documents(again, output.new_document(dict(item, seen=5000.0), 5001.0))
    assert later["seen_count"] == 2 and later["first_seen"] == first["first_seen"]
    assert later["last_seen"] > first["last_seen"]
    assert list(later)[:11] == list(output.ORIGINAL_FIELDS)


def test_local_seen_cache_over_redis_forgets_in_both(redis_url):
    from scout.store import RedisStore, with_local_seen

    shared = RedisStore(redis_url)
    seen = with_local_seen(shared)
    assert with_local_seen(seen) is seen
    assert seen.add_if_new(["a.example", "b.example", "a.example"], 60) == [True, True, False]
    shared.r.flushdb()                                        # answered locally now, Redis not asked
    assert seen.add_if_new(["a.example"], 60) == [False]
    seen.forget(["a.example"])                                # a sink dropped it: it may come back
    assert seen.add_if_new(["a.example"], 60) == [True]
    assert RedisStore(redis_url).add_if_new(["a.example"], 60) == [False]   # and Redis knows it again


# ------------------------------------------------------------------ configuration

@pytest.mark.parametrize("var, value", [("DNS_WORKERS", "abc"), ("CACHE_TTL", "forever"),
                                        ("DNS_SERVER", ":::"), ("WHOIS_IPS", "1.2.3"),
                                        ("BATCH_LINGER", "-1s"), ("STRIP_WWW", "maybe")])
def test_bad_configuration_exits_2_naming_the_variable(var, value, tmp_path):
    # Redis URL points nowhere: the check must happen before any connection.
    env = scout_env(**{var: value, "BROKER_URL": "redis://127.0.0.1:1/0"})
    r = run_scout(["run", "--source", str(FIXTURE)], env, timeout=60, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert var in r.stderr


def test_broken_watchlist_for_enrich_watchlist_exits_2(tmp_path):
    (tmp_path / "wl.yaml").write_text("keywords: [unclosed\n")
    env = scout_env(ENRICH="watchlist", WATCHLIST_FILE=tmp_path / "wl.yaml", BROKER_URL="redis://127.0.0.1:1/0")
    r = run_scout(["run", "--source", str(FIXTURE)], env, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "WATCHLIST_FILE" in r.stderr, r.stderr[-2000:]


def test_durations_and_dotenv(tmp_path):
    (tmp_path / ".env").write_text("CACHE_TTL=5m\nDNS_SERVER='127.0.0.1:5353,[::1]:53'\n# comment\n")
    s = load_settings({"BATCH_LINGER": "500ms"}, tmp_path / ".env")
    assert s.cache_ttl == 300 and s.batch_linger == 0.5
    assert s.dns_servers == (("127.0.0.1", 5353), ("::1", 53))
    assert load_settings({"CACHE_TTL": "1h"}, tmp_path / ".env").cache_ttl == 3600  # env wins


def test_ip_cache_most_specific_network_first_across_processes(redis_url):
    """IP answers are cached per covered network; a reader finds the most specific one, and another
    process (a fresh store) sees a length cached after its copy of the lengths was taken."""
    import ipaddress

    from scout.stages.ipcache import cache_ip_result, cached_ip_results
    from scout.store import RedisStore

    writer, reader = RedisStore(redis_url), RedisStore(redis_url)
    assert cached_ip_results(reader, ["203.0.113.9"]) == {"203.0.113.9": None}   # reader's copy: no lengths
    net = ipaddress.ip_network
    cache_ip_result(writer, [net("198.51.96.0/20")], {"info": {"network_cidr": "198.51.96.0/20"}}, 60)
    cache_ip_result(writer, [net("198.51.100.0/22"), net("198.51.100.0/24")],
                    {"info": {"network_cidr": "198.51.100.0/24"}}, 60)
    cache_ip_result(writer, [net("2001:db8::/32")], {"info": {"network_cidr": "2001:db8::/32"}}, 60)
    time.sleep(1.1)                                   # the reader re-reads lengths on a miss after 1 s
    got = cached_ip_results(reader, ["198.51.100.7", "198.51.101.7", "198.51.97.1", "198.51.112.1",
                                     "2001:db8:5::1", "10.0.0.1"])
    cidr = {ip: (r or {}).get("info", {}).get("network_cidr") for ip, r in got.items()}
    assert cidr == {"198.51.100.7": "198.51.100.0/24", "198.51.101.7": "198.51.100.0/24",
                    "198.51.97.1": "198.51.96.0/20", "198.51.112.1": None, "2001:db8:5::1": "2001:db8::/32",
                    "10.0.0.1": None}
    assert sorted(m.decode() for m in writer.r.smembers("scout:ipnet:lengths")) == ["4/20", "4/22", "4/24", "6/32"]


# ------------------------------------------------------------------ DNS stage against nsd

def test_dns_stage_formats_and_outcomes(dns_server):
    from scout.stages.dns import resolve_batch

    s = load_settings({"DNS_SERVER": dns_server, "DNS_TIMEOUT": "1s"}, None)
    names = ["shop-example-login.example", "checkout.shop-example-login.example", "router.home.example",
             "mail.example.org", "big-txt.example", "loop-a.example", "acme-widgets.example"]
    got = dict(zip(names, resolve_batch(names, s)))
    shop = got["shop-example-login.example"]
    for key, value in EXPECTED["shop-example-login.example"].items():
        if key != "root_domain":
            assert shop[key] == value, key
    assert shop["dns_status"] == dict({t: "NOERROR" for t in ("A", "AAAA", "MX", "TXT", "CAA")}, SOA="NODATA")
    assert got["checkout.shop-example-login.example"]["cname_chain"] == ["edge.cdn-provider.example"]
    nx = got["router.home.example"]
    assert nx["dns_status"]["A"] == "NXDOMAIN" and nx["a_records"] == [] and not nx["transient"]
    assert nx["soa_record"].startswith("ns1.example. ")     # from the authority section
    assert got["mail.example.org"]["dns_status"]["MX"] == "NODATA"
    assert got["mail.example.org"]["soa_record"].startswith("ns1.example.org. hostmaster.example.org. ")
    big = got["big-txt.example"]["txt_records"]                # > 1232 bytes: truncated, then TCP
    assert len(big) == 1 and len(big[0]) == 20 * 202
    assert got["loop-a.example"]["a_records"] == []            # a CNAME loop ends, recorded
    assert got["loop-a.example"]["cname_chain"][:2] == ["loop-b.example", "loop-a.example"]


def test_dns_queries_ask_with_edns0_and_a_1232_byte_payload():
    import dns.message
    import dns.name

    from scout.stages.dns import make_query

    a, b = make_query(dns.name.from_text("a.example"), "TXT"), make_query(dns.name.from_text("b.example"), "CAA")
    for q, name, rdtype in ((a, "a.example.", "TXT"), (b, "b.example.", "CAA")):
        wire = dns.message.from_wire(q.to_wire())   # as the server sees it
        assert wire.edns == 0 and wire.payload == 1232 and not wire.options
        assert wire.question[0].to_text() == f"{name} IN {rdtype}"
        assert wire.flags & dns.flags.RD


def test_dns_stage_reports_an_absent_server_as_transient():
    from scout.stages.dns import resolve_batch

    s = load_settings({"DNS_SERVER": "127.0.0.1:9", "DNS_TIMEOUT": "200ms", "DNS_RETRIES": "0"}, None)
    rec = resolve_batch(["a.example"], s)[0]
    assert rec["transient"] and set(rec["dns_status"].values()) <= {"TIMEOUT", "UNREACHABLE"}


# ------------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def local_rdap(tmp_path_factory):
    """RDAP bootstrap whose every service is a local server that answers not_found."""
    from tests.servers.rdap import RdapServer, rdap_bootstrap

    server = RdapServer().start()
    yield rdap_bootstrap(tmp_path_factory.mktemp("rdap"), server.base), server
    server.stop()


def check_documents(out: Path, only_certificates: bool = False) -> dict:
    """The documents of FIXTURE's domains (all, or those of its certificate frames), checked."""
    docs = read_documents(out)
    validate_documents(docs)
    assert set(docs) == fixture_domains(only_certificates)
    for name, fields in EXPECTED.items():
        if name not in docs and only_certificates:
            continue
        doc = docs[name]
        for key, value in fields.items():
            if key == "dns_status":
                for t, status in value.items():
                    assert doc["dns_status"][t] == status, (name, t)
            else:
                assert doc[key] == value, (name, key)
    # Every file lives at OUTPUT_DIR/<root>/<domain>.json.
    for path in out.rglob("*.json"):
        if path.name != "alerts.jsonl":
            doc = json.loads(path.read_text())
            assert path == output.document_path(out, doc["root_domain"], doc["domain"])
    return docs


@pytest.mark.slow
def test_run_from_recording_without_a_broker(tmp_path, dns_server, local_rdap):
    env_extra, rdap = local_rdap
    out = tmp_path / "out"
    env = scout_env(DNS_SERVER=dns_server, OUTPUT_DIR=out, ALERT_MIN_SCORE=50, **env_extra)
    r = run_scout(["run", "--source", str(FIXTURE)], env, timeout=240, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    docs = check_documents(out)
    assert summary["unique"] == summary["saved"] == len(docs) and summary["failed"] == 0
    assert summary["frames"] == 59
    assert summary["skipped"]["names_skipped_ip_address"] >= 2
    # WHOIS landed before the run ended: nothing is left pending.
    statuses = {d["domain_whois_parsed"]["status"] for d in docs.values()}
    assert statuses == {"not_found"}, statuses
    assert all(v["status"] == "reserved" for d in docs.values() for v in d["ip_info"].values())
    cert = docs["shop-example-login.example"]["certificate"]
    assert cert["sha256"].startswith("E0:7C") and cert["type"] in ("precert", "cert")
    assert "score" in docs["shop-example-login.example"]
    # Alerts: every saved document scoring >= ALERT_MIN_SCORE, and only those, in OUTPUT_DIR/alerts.jsonl.
    alerted = {json.loads(line)["domain"] for line in (out / "alerts.jsonl").read_text().splitlines()}
    assert alerted and alerted == {n for n, d in docs.items() if d["score"] >= 50}


@pytest.mark.slow
def test_replay_server_to_redis_and_real_workers(tmp_path, dns_server, local_rdap, redis_url, workers):
    """replay server -> `scout produce` -> Redis -> one celery worker per queue -> files; the
    certstream server restarts mid-stream and the producer carries on."""
    from scout.sources.replay import ReplayServer

    env_extra, _ = local_rdap
    out = tmp_path / "out"
    env = scout_env(DNS_SERVER=dns_server, OUTPUT_DIR=out, BROKER_URL=redis_url, **env_extra)
    w = workers(env)
    w.start_all_stages()

    server = ReplayServer(FIXTURE, rate=40).start()
    port = server.port
    producer = subprocess.Popen([sys.executable, "-m", "scout", "produce", "--url",
                                 f"ws://127.0.0.1:{port}/full-stream"], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reading(producer, server) as servers:
        wait_for(lambda: server.frames_sent >= 10, timeout=30, message="the producer connected")
        server.stop()                        # part of the stream has gone through
        time.sleep(1.5)                      # the producer sees the server gone
        server = ReplayServer(FIXTURE, port=port).start()   # restarted: replays from the start
        servers.append(server)
        expected = fixture_domains(only_certificates=True)
        wait_for(lambda: expected <= set(read_documents(out)), timeout=90,
                 message="every fixture domain saved after the certstream restart")
        stdout, stderr = stop_gracefully(producer)
    assert producer.returncode == 0, stderr[-3000:]
    counts = json.loads(stdout.strip().splitlines()[-1])
    assert counts["reconnects"] >= 1
    assert counts["duplicates"] > 0          # the replay after the restart repeats names: not re-enqueued
    docs = check_documents(out, only_certificates=True)
    assert all("certificate" in d for d in docs.values())


def hostile_recording(path: Path) -> Path:
    lines = [
        "this is not json",
        '{"message_type":"dns_entries","data":["../../etc/passwd","a/b","' + "x" * 300 + '",'
        '"nul\\u0000byte.example","ok-name.example","..","/abs.example","back\\\\slash.example",'
        '"' + "a" * 64 + '.example","ünïcode-ok.example","\\u202eevil.example"]}',
        json.dumps({"message_type": "dns_entries", "data": "x" * (10 * 1024 * 1024)}),
        # 10,000 names in one frame: 2,000 domains, each also as WWW., *. and trailing-dot variants.
        json.dumps({"message_type": "dns_entries", "data": [
            v for i in range(2000) for v in (f"n{i}.bulk.example", f"WWW.n{i}.bulk.example",
                                             f"*.n{i}.bulk.example", f"n{i}.bulk.example.", f"N{i}.Bulk.Example")]}),
        '{"message_type":"certificate_update","data":{"leaf_cert":{"all_domains":[1,null,{"a":1},"fine.example"]}}}',
        "\xff\xfe binary-ish",
        '{"message_type":"heartbeat","timestamp":1}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
    return path


@pytest.mark.slow
def test_hostile_input_is_counted_and_contained(tmp_path, dns_server, local_rdap):
    env_extra, _ = local_rdap
    out = tmp_path / "out"
    rec = hostile_recording(tmp_path / "hostile.jsonl")
    env = scout_env(DNS_SERVER=dns_server, OUTPUT_DIR=out, DNS_WORKERS=100, **env_extra)
    r = run_scout(["run", "--source", str(rec)], env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    skipped = summary["skipped"]
    assert skipped["frames_bad_json"] == 2 and skipped["frames_heartbeat"] == 1
    assert skipped["frames_malformed"] == 1            # the 10 MB string where a list belongs
    assert skipped["names_skipped_bad_chars"] >= 5
    assert skipped["names_skipped_too_long"] == 1 and skipped["names_skipped_label_too_long"] == 1
    assert skipped["names_skipped_not_a_string"] == 3
    docs = read_documents(out)
    validate_documents(docs)
    assert {"ok-name.example", "fine.example", "xn--ncode-ok-u2a2k.example", "n1999.bulk.example"} <= set(docs)
    assert len(docs) == summary["saved"] == summary["unique"] == 2000 + 3
    assert summary["domains_seen"] == 10000 + 11 + 4
    # Nothing outside OUTPUT_DIR: every file under it, none anywhere else in the tmp dir.
    stray = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents
             and p.name != "hostile.jsonl"]
    assert stray == []

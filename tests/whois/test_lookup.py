"""WHOIS/RDAP lookup layer against local servers only: a threaded RDAP server, port-43 servers and a
real NSD serving asn.cymru.com. The bootstrap files are written into a tmp dir that points at the local
RDAP server, so the real bootstrap routing is exercised. Nothing here talks to a real registry."""
from __future__ import annotations

import dataclasses
import json
import time

import pytest

from scout.config import Settings, parse_networks
from scout.whois import RateLimited, get_bootstrap, is_reserved, lookup_domain, lookup_ip
from scout.whois.bootstrap import SHIPPED_DIR
from scout.whois.http import http_get, parse_retry_after
from scout.whois.errors import LookupFailed
from scout.whois.targets import Guard
from tests.conftest import need_nsd
from tests.servers.base import ALLOW_NETWORKS, start_on_referral_port
from tests.servers.dns_nsd import start_nsd, stop_nsd
from tests.servers.dns_scripted import ScriptedDns
from tests.servers.rdap import ARIN_2001_4860, ARIN_8_8_8, RIPE_193_0_0, RdapServer, write_bootstrap
from tests.servers.whois43 import Whois43Server

TIMEOUT = 1.5          # WHOIS_TIMEOUT for these tests
# Allowed overshoot past a deadline: generous (a loaded 2-core machine), still far below the 30 s a
# hostile server keeps a connection busy when nothing enforces the deadline.
SLACK = 10.0
V6 = "2001:4860:4860::8888"


def _origin6_name(ip: str) -> str:
    from ipwhois.net import Net
    return Net(ip).dns_zone


def cymru_zone() -> str:
    v6_label = _origin6_name(V6)[: -len(".origin6.asn.cymru.com.")]
    return f"""$TTL 300
@        IN SOA ns.asn.cymru.com. hostmaster.asn.cymru.com. 2024112701 3600 600 86400 300
@        IN NS  ns.asn.cymru.com.
ns       IN A   127.0.0.1
8.8.8.8.origin      IN TXT "15169 | 8.8.8.0/24 | US | arin | 2023-12-28"
139.6.0.193.origin  IN TXT "3333 | 193.0.0.0/21 | NL | ripencc | 1993-09-01"
139.6.0.193.origin  IN TXT "3333 | 193.0.0.0/16 | NL | ripencc | 1993-09-01"
{v6_label}.origin6 IN TXT "15169 | 2001:4860::/32 | US | arin | 2005-03-14"
AS15169  IN TXT "15169 | US | arin | 2000-03-30 | GOOGLE, US"
AS3333   IN TXT "3333 | NL | ripencc | 1992-08-25 | RIPE-NCC-AS Reseaux IP Europeens Network Coordination Centre (RIPE NCC), NL"
"""


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def rdap():
    srv = RdapServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def w43():
    """Three port-43 servers: IANA-like referral server (trusted: WHOIS_REFERRAL_SERVER), registry and
    registrar (reached through referrals: port 4343, addresses inside WHOIS_ALLOW_NETWORKS)."""
    iana = Whois43Server().start()
    registry, registrar = start_on_referral_port(Whois43Server), start_on_referral_port(Whois43Server)
    yield iana, registry, registrar
    for s in (iana, registry, registrar):
        s.stop()


@pytest.fixture(scope="module")
def nsd_port(tmp_path_factory):
    need_nsd()
    proc, port = start_nsd({"asn.cymru.com.": cymru_zone()}, tmp_path_factory.mktemp("nsd"))
    yield port
    stop_nsd(proc)


@pytest.fixture(scope="module")
def boot_dir(tmp_path_factory, rdap):
    base = rdap.base
    return write_bootstrap(tmp_path_factory.mktemp("boot"), {"com": base + "com/", "org": base + "com/"},
                           {"8.0.0.0/8": base + "arin/", "193.0.0.0/8": base + "ripe/"},
                           {"2001:4800::/23": base + "wrong/", "2001:4860::/32": base + "arin/"})


@pytest.fixture(scope="module")
def settings(boot_dir, w43):
    """No DNS server behind dns_servers (port 1): only `ip_settings` tests need NSD."""
    return dataclasses.replace(
        Settings(), rdap_bootstrap_dir=str(boot_dir), whois_timeout=TIMEOUT, whois_max_bytes=256 * 1024,
        whois_referral_server=w43[0].label, dns_servers=(("127.0.0.1", 1),), dns_timeout=0.3,
        dns_retries=0, whois_allow_networks=parse_networks("WHOIS_ALLOW_NETWORKS", ALLOW_NETWORKS))


@pytest.fixture(scope="module")
def ip_settings(settings, nsd_port):
    return dataclasses.replace(settings, dns_servers=(("127.0.0.1", nsd_port),), dns_timeout=1.0)


def timed(fn, *a, **kw):
    t = time.monotonic()
    out = fn(*a, **kw)
    return out, time.monotonic() - t


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_longest_match(tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    (d / "dns.json").write_text(json.dumps({"services": [
        [["uk"], ["http://uk.example/rdap"]],
        [["co.uk"], ["http://co-uk.example/", "https://co-uk.example/"]],
        [["xn--p1ai"], ["https://rf.example/"]]]}))
    (d / "ipv4.json").write_text(json.dumps({"services": [
        [["8"], ["https://wide.example/"]], [["8.8.0.0/16"], ["https://narrow.example/"]]]}))
    (d / "ipv6.json").write_text("{ not json")   # unusable: the shipped ipv6.json is used instead
    s = dataclasses.replace(Settings(), rdap_bootstrap_dir=str(d))
    b = get_bootstrap(s)
    assert b.domain_base("WWW.Example.CO.UK.") == "https://co-uk.example/"   # https preferred
    assert b.domain_base("example.uk") == "http://uk.example/rdap/"           # trailing slash added
    assert b.domain_base("пример.рф") == "https://rf.example/"                # IDN -> A-label
    assert b.domain_base("example.nope") is None
    assert b.ip_base("8.8.8.8") == "https://narrow.example/"
    assert b.ip_base("8.1.2.3") == "https://wide.example/"
    assert b.ip_base("9.9.9.9") is None
    assert b.sources["ipv6.json"].startswith(str(SHIPPED_DIR))
    assert b.ip_base("2a00:1450:4001::1") == "https://rdap.db.ripe.net/"


def test_shipped_snapshot_routes_the_big_registries():
    s = dataclasses.replace(Settings(), rdap_bootstrap_dir=str(SHIPPED_DIR))
    b = get_bootstrap(s)
    assert b.domain_base("example.com") == "https://rdap.verisign.com/com/v1/"
    assert b.domain_base("example.org") == "https://rdap.publicinterestregistry.org/rdap/"
    assert b.domain_base("example.ru") is None                   # no RDAP: port 43
    assert b.ip_base("8.8.8.8") == "https://rdap.arin.net/registry/"
    assert b.ip_base("193.0.6.139") == "https://rdap.db.ripe.net/"
    assert b.ip_base("1.1.1.1") == "https://rdap.apnic.net/"
    assert b.ip_base("200.160.2.3") == "https://rdap.lacnic.net/rdap/"
    assert b.ip_base("41.1.1.1") == "https://rdap.afrinic.net/rdap/"
    assert b.ip_base("2606:4700::1111") == "https://rdap.arin.net/registry/"


def test_refresh_bootstrap_daily_and_never_with_configured_dir(tmp_path, boot_dir):
    from scout.whois import refresh_bootstrap
    with RdapServer() as srv:
        for f in ("dns.json", "ipv4.json", "ipv6.json"):
            srv.route("/rdap/" + f, "json", obj=json.loads((boot_dir / f).read_text()))
        base = srv.base + "rdap/"
        cache = tmp_path / "cache"
        configured = dataclasses.replace(Settings(), rdap_bootstrap_dir=str(boot_dir))
        assert refresh_bootstrap(configured, cache, base_url=base) is False and not srv.requests
        plain = Settings()
        assert refresh_bootstrap(plain, cache, base_url=base) is True
        assert json.loads((cache / "dns.json").read_text())["services"][0][0] == ["com", "org"]
        assert len(srv.requests) == 3
        assert refresh_bootstrap(plain, cache, base_url=base) is False      # fetched less than a day ago
        assert len(srv.requests) == 3


def test_retry_after_parsing():
    assert parse_retry_after("120") == 120
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0      # in the past
    assert parse_retry_after("99999999") == 86400                         # clamped


# ---------------------------------------------------------------- domain RDAP


def test_rdap_registry_then_registrar_merged_and_source_bound(rdap, settings):
    rdap.route("/com/domain/example.com", "domain", related=rdap.base + "registrar/domain/example.com")
    rdap.route("/registrar/domain/example.com", "registrar_domain")
    n = len(rdap.requests)
    res = lookup_domain("Example.COM", settings, source_ip="127.0.0.2")
    p = res["parsed"]
    assert p["source"] == "rdap" and p["status"] == "ok"
    assert p["server"] == rdap.base + "com/"
    assert p["registrar"] == "RESERVED-Internet Assigned Numbers Authority"
    assert p["created"] == "1995-08-14T04:00:00Z"
    assert p["updated"] == "2024-08-14T07:01:34Z"
    assert p["expires"] == "2025-08-13T04:00:00Z"
    assert p["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net", "c.iana-servers.net"]
    assert "client delete prohibited" in p["statuses"] and "client renew prohibited" in p["statuses"]
    assert "registrar_status" not in p
    assert res["raw"].count('"objectClassName"') >= 2
    json.dumps(res)
    seen = rdap.requests[n:]
    assert [path for _, path in seen] == ["/com/domain/example.com", "/registrar/domain/example.com"]
    assert {peer for peer, _ in seen} == {"127.0.0.2"}


def test_rdap_not_found(rdap, settings):
    rdap.route("/com/domain/nothing-here.com", "notfound")
    res = lookup_domain("nothing-here.com", settings)
    assert res["parsed"]["status"] == "not_found" and res["parsed"]["source"] == "rdap"


def test_rdap_429_raises_with_retry_after(rdap, settings):
    rdap.route("/com/domain/busy.com", "too_many", retry_after=120)
    with pytest.raises(RateLimited) as ei:
        lookup_domain("busy.com", settings)
    assert ei.value.retry_after == 120
    assert ei.value.server == rdap.base.rstrip("/")


@pytest.mark.parametrize("code,body,limited", [
    (403, '{"errorCode":403,"title":"Rate limit exceeded","description":["slow down"]}', True),
    (422, '{"errorCode":422,"title":"Query limit reached for your IP"}', True),
    (403, '{"errorCode":403,"title":"Forbidden"}', False),
    (500, "Internal Server Error", False),
])
def test_rdap_limit_wording(rdap, settings, code, body, limited):
    name = f"code{code}{int(limited)}.com"
    rdap.route(f"/com/domain/{name}", "status", code=code, body=body)
    if limited:
        with pytest.raises(RateLimited) as ei:
            lookup_domain(name, settings)
        assert ei.value.retry_after is None
    else:
        assert lookup_domain(name, settings)["parsed"]["status"] == f"error: http {code}"


def test_rdap_invalid_json(rdap, settings):
    rdap.route("/com/domain/broken.com", "invalid_json")
    assert lookup_domain("broken.com", settings)["parsed"]["status"] == "error: invalid rdap json"


def test_rdap_redirect_loop(rdap, settings):
    rdap.route("/com/domain/loop.com", "redirect_loop")
    res, took = timed(lookup_domain, "loop.com", settings)
    assert res["parsed"]["status"] == "error: redirect loop"
    assert took < TIMEOUT + SLACK


@pytest.mark.parametrize("with_length", [False, True])
def test_rdap_huge_body_is_cut(rdap, settings, with_length):
    name = f"huge{int(with_length)}.com"
    rdap.route(f"/com/domain/{name}", "huge", with_length=with_length)
    res, took = timed(lookup_domain, name, settings)
    assert res["parsed"]["status"] == "error: response too large"
    assert took < TIMEOUT + SLACK


@pytest.mark.parametrize("where", ["body", "headers"])
def test_rdap_drip_hits_total_deadline(rdap, settings, where):
    name = f"drip-{where}.com"
    rdap.route(f"/com/domain/{name}", "drip", where=where, interval=0.1)
    res, took = timed(lookup_domain, name, settings)
    assert res["parsed"]["status"] == "error: timeout"
    assert TIMEOUT - 0.1 <= took < TIMEOUT + SLACK


def test_rdap_registrar_failure_keeps_registry_data(rdap, settings):
    rdap.route("/com/domain/keep.com", "domain", related=rdap.base + "registrar/domain/keep.com")
    rdap.route("/registrar/domain/keep.com", "too_many", retry_after=30)
    p = lookup_domain("keep.com", settings)["parsed"]
    assert p["status"] == "ok" and p["registrar_status"] == "rate_limited"
    assert p["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net"]


def test_http_source_address_seen_by_server():
    with RdapServer(require_peer="127.0.0.3") as srv:
        srv.route("/x", "json", obj={"ok": True})
        bound, unbound = Guard(Settings(), "127.0.0.3"), Guard(Settings())
        assert http_get(srv.base + "x", guard=bound, timeout=2, max_bytes=1000).status == 200
        assert http_get(srv.base + "x", guard=unbound, timeout=2, max_bytes=1000).status == 403
        assert [p for p, _ in srv.requests] == ["127.0.0.3", "127.0.0.1"]


def test_http_refuses_other_schemes():
    with pytest.raises(LookupFailed):
        http_get("ftp://127.0.0.1/x", guard=Guard(Settings()), timeout=1, max_bytes=10)


# ---------------------------------------------------------------- domain port 43


def test_whois_referral_chain(w43, settings):
    iana, registry, registrar = w43
    iana.route("example.net", "iana", referral=registry.label)
    registry.route("example.net", "thin", referral=registrar.label)
    registrar.route("example.net", "registrar")
    marks = [len(s.queries) for s in w43]
    res = lookup_domain("example.net", settings, source_ip="127.0.0.3")
    p = res["parsed"]
    assert p["source"] == "whois" and p["status"] == "ok", p
    assert p["server"] == registry.label
    assert p["servers"] == [iana.label, registry.label, registrar.label]
    assert p["registrar"] == "RESERVED-Internet Assigned Numbers Authority"
    assert p["created"] == "1995-08-14T04:00:00Z"
    assert p["updated"] == "2024-08-14T07:01:34Z"
    assert p["expires"] == "2025-08-13T04:00:00Z"
    assert p["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net", "c.iana-servers.net"]
    assert "clientTransferProhibited" in p["statuses"]
    assert "refer:" in res["raw"] and "Registrar Abuse Contact Email: abuse@registrar.example" in res["raw"]
    for srv, mark in zip(w43, marks):
        assert [peer for peer, _ in srv.queries[mark:]] == ["127.0.0.3"]
        assert srv.queries[mark][1] == "example.net"
    json.dumps(res)


def test_whois_not_found(w43, settings):
    iana, registry, _ = w43
    iana.route("nope.net", "iana", referral=registry.label)
    registry.route("nope.net", "notfound")
    p = lookup_domain("nope.net", settings)["parsed"]
    assert p["status"] == "not_found" and p["server"] == registry.label


def test_whois_rate_limit_message_raises(w43, settings):
    iana, registry, _ = w43
    iana.route("limited.net", "iana", referral=registry.label)
    registry.route("limited.net", "ratelimit")
    with pytest.raises(RateLimited) as ei:
        lookup_domain("limited.net", settings)
    assert ei.value.server == registry.label and ei.value.retry_after is None


@pytest.mark.parametrize("mode,status,max_time", [
    ("silent", "error: timeout", TIMEOUT + SLACK),
    ("drip", "error: timeout", TIMEOUT + SLACK),
    ("huge", "error: response too large", TIMEOUT + SLACK),
    ("garbage", "error: no registration data in answer", TIMEOUT + SLACK),
])
def test_whois_hostile_registry(w43, settings, mode, status, max_time):
    iana, registry, _ = w43
    name = f"hostile-{mode}.net"
    iana.route(name, "iana", referral=registry.label)
    registry.route(name, mode)
    res, took = timed(lookup_domain, name, settings)
    assert res["parsed"]["status"] == status
    assert took < max_time
    json.dumps(res)
    if mode == "drip":
        assert took >= TIMEOUT - 0.1


def test_whois_self_referral_refused(w43, settings):
    iana = w43[0]
    iana.route("self.net", "selfref")
    mark = len(iana.queries)
    p = lookup_domain("self.net", settings)["parsed"]
    assert p["status"] == "error: referral loop"
    assert len(iana.queries) - mark == 1


def test_whois_registrar_timeout_keeps_registry(w43, settings):
    iana, registry, registrar = w43
    iana.route("slowreg.net", "iana", referral=registry.label)
    registry.route("slowreg.net", "thin", referral=registrar.label)
    registrar.route("slowreg.net", "silent")
    p, took = timed(lookup_domain, "slowreg.net", settings)
    assert p["parsed"]["status"] == "ok" and p["parsed"]["registrar_status"] == "error: timeout"
    assert p["parsed"]["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net"]
    assert took < 2 * TIMEOUT + SLACK


def test_whois_tld_without_whois_server(w43, settings):
    iana = w43[0]
    iana.route("thing.zz", "text", text="% IANA WHOIS server\n\ndomain:       ZZ\n\nstatus:       ACTIVE\n"
                                         "created:      1985-01-01\nsource:       IANA\n")
    p = lookup_domain("thing.zz", settings)["parsed"]
    assert p["status"] == "error: no whois server for this tld" and p["statuses"] == []


def test_referral_server_that_is_a_registry(w43, settings):
    """WHOIS_REFERRAL_SERVER may point straight at a registry: its answer is then the data."""
    iana, _, registrar = w43
    iana.route("direct.net", "thin", referral=registrar.label)
    registrar.route("direct.net", "registrar")
    p = lookup_domain("direct.net", settings)["parsed"]
    assert p["status"] == "ok" and p["server"] == iana.label and "c.iana-servers.net" in p["nameservers"]


def test_rate_limited_survives_pickling():
    import pickle
    e = pickle.loads(pickle.dumps(RateLimited("http://127.0.0.1:1", 12.0)))
    assert (e.server, e.retry_after) == ("http://127.0.0.1:1", 12.0) and "retry after 12" in str(e)


def test_whois_unreachable_referral_server(settings):
    s = dataclasses.replace(settings, whois_referral_server="127.0.0.1:1")
    assert lookup_domain("example.net", s)["parsed"]["status"] == "error: connection failed"


def test_invalid_domain_name(settings):
    assert lookup_domain("", settings)["parsed"]["status"] == "error: invalid domain name"


# ---------------------------------------------------------------- IP


def test_ip_arin_with_asn_from_nsd(rdap, ip_settings):
    rdap.route("/arin/ip/8.8.8.8", "ip", sample=ARIN_8_8_8)
    n = len(rdap.requests)
    res = lookup_ip("8.8.8.8", ip_settings, source_ip="127.0.0.2")
    i = res["info"]
    assert i["status"] == "ok", i
    assert i["asn"] == "15169" and i["asn_cidr"] == "8.8.8.0/24" and i["asn_country"] == "US"
    assert i["asn_description"] == "GOOGLE, US" and i["asn_registry"] == "arin"
    assert i["network_cidr"] == "8.8.8.0/24" and i["network_name"] == "GOGL"
    assert i["network_handle"] == "NET-8-8-8-0-2"
    assert i["country"] == "US"           # no country on ARIN's object: the ASN's
    assert i["server"] == rdap.base + "arin/"
    assert res["cover"] == "8.8.8.0/24"
    assert json.loads(res["raw"])["handle"] == "NET-8-8-8-0-2"
    assert rdap.requests[n:] == [("127.0.0.2", "/arin/ip/8.8.8.8")]


def test_ip_ripe_range_cover_and_most_specific_asn(rdap, ip_settings):
    rdap.route("/ripe/ip/193.0.6.139", "ip", sample=RIPE_193_0_0)
    res = lookup_ip("193.0.6.139", ip_settings)
    i = res["info"]
    assert i["status"] == "ok" and i["country"] == "NL" and i["network_name"] == "RIPE-NCC"
    assert i["asn"] == "3333" and i["asn_cidr"] == "193.0.0.0/21"
    assert i["asn_description"].startswith("RIPE-NCC-AS")
    assert res["cover"] == "193.0.0.0/21"


def test_ipv6_longest_prefix_and_origin6(rdap, ip_settings):
    rdap.route(f"/arin/ip/{V6}", "ip", sample=ARIN_2001_4860)
    res = lookup_ip(V6, ip_settings)
    assert res["info"]["status"] == "ok" and res["info"]["asn"] == "15169"
    assert res["info"]["server"] == rdap.base + "arin/"
    assert res["cover"] == "2001:4860::/32"


@pytest.mark.parametrize("ip", ["10.1.2.3", "127.0.0.1", "192.168.1.1", "192.0.2.7", "198.51.100.1",
                                "203.0.113.9", "100.64.0.1", "169.254.1.1", "224.0.0.1", "0.0.0.0",
                                "255.255.255.255", "::1", "fe80::1", "2001:db8::1", "fc00::1",
                                "::ffff:10.0.0.1"])
def test_reserved_addresses_are_not_looked_up(rdap, settings, ip):
    n = len(rdap.requests)
    with ScriptedDns({}) as dns_srv:              # counts every query (the ASN lookup would ask it)
        res = lookup_ip(ip, dataclasses.replace(settings, dns_servers=(("127.0.0.1", dns_srv.port),)))
    assert is_reserved(ip)
    assert res["info"]["status"] == "reserved"
    assert len(rdap.requests) == n and dns_srv.queries == []


def test_public_addresses_are_not_reserved():
    for ip in ("8.8.8.8", "193.0.6.139", V6, "1.1.1.1"):
        assert not is_reserved(ip)


def test_ip_rdap_statuses(rdap, ip_settings):
    rdap.route("/arin/ip/8.8.4.4", "too_many", retry_after=7)
    with pytest.raises(RateLimited) as ei:
        lookup_ip("8.8.4.4", ip_settings)
    assert ei.value.retry_after == 7
    rdap.route("/arin/ip/8.8.8.8", "notfound")
    res = lookup_ip("8.8.8.8", ip_settings)
    assert res["info"]["status"] == "not_found" and res["info"]["asn"] == "15169"
    rdap.route("/arin/ip/8.8.8.8", "json", obj={"objectClassName": "ip network", "name": "no handle"})
    assert lookup_ip("8.8.8.8", ip_settings)["info"]["status"] == "error: invalid rdap network object"
    rdap.route("/arin/ip/8.8.8.8", "ip", sample=dict(ARIN_8_8_8, cidr0_cidrs=[{"v4prefix": "0.0.0.0", "length": 0}],
                                                     startAddress="0.0.0.0", endAddress="255.255.255.255"))
    assert lookup_ip("8.8.8.8", ip_settings)["cover"] == "8.8.8.8/32"   # an absurd network is no cache key


def test_ip_without_dns_still_answers(rdap, settings):
    rdap.route("/arin/ip/8.8.8.8", "ip", sample=ARIN_8_8_8)
    res = lookup_ip("8.8.8.8", settings)     # dns_servers: nothing listens there
    assert res["info"]["status"] == "ok" and res["info"]["asn"] is None
    assert res["info"]["asn_status"].startswith("error:")


def test_dns_queries_bound_to_source_ip(rdap, settings):
    rdap.route("/arin/ip/8.8.8.8", "ip", sample=ARIN_8_8_8)
    with ScriptedDns({("8.8.8.8.origin.asn.cymru.com", "TXT"): [['"15169 | 8.8.8.0/24 | US | arin | 2023-12-28"']],
                      ("AS15169.asn.cymru.com", "TXT"): [['"15169 | US | arin | 2000-03-30 | GOOGLE, US"']]}) as rec:
        s = dataclasses.replace(settings, dns_servers=(("127.0.0.1", rec.port),))
        res = lookup_ip("8.8.8.8", s, source_ip="127.0.0.3")
    assert res["info"]["asn_description"] == "GOOGLE, US"
    assert [peer for peer, _, _ in rec.queries] == ["127.0.0.3", "127.0.0.3"]

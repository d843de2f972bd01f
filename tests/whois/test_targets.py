"""Issue 15: answers are untrusted. RDAP `related` links, HTTP redirects and port-43 referrals name
targets that a lookup resolves (through DNS_SERVER) and checks before it connects; a refused target sees
no connection at all and the registry's answer lands anyway. Issue 14: a registrar that cannot be reached
never holds a lookup, and a registrar's answer about another domain is not merged.

Everything runs on loopback: RDAP and port-43 servers, canaries (tests/servers/traps.py) outside
WHOIS_ALLOW_NETWORKS, a real nsd serving the servers' host names, and a scripted DNS server for what nsd
cannot do (answer differently the second time, never answer, tell who asked).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import time

import pytest

from scout.config import ConfigError, Settings, load_settings, parse_networks
from scout.whois import lookup_domain, lookup_ip
from scout.whois.targets import is_global_unicast
from tests.conftest import emptied_redis, need_nsd, read_documents, redis_db, run_scout, scout_env, validate_documents
from tests.servers.base import (ALLOW_NETWORKS, CANARY_HOST, CANARY_NET, REFERRAL_NET,
                                start_on_referral_port)
from tests.servers.dns_nsd import start_nsd, stop_nsd
from tests.servers.dns_scripted import ScriptedDns
from tests.servers.rdap import ARIN_8_8_8, RdapServer
from tests.servers.tls import TestCA
from tests.servers.traps import Blackhole, Canary
from tests.servers.whois43 import Whois43Server

TIMEOUT = 1.5          # WHOIS_TIMEOUT here: a lookup ends within 2 x TIMEOUT
SLACK = 10.0           # generous overshoot (a loaded machine), far below a hostile server's 30 s
ZONE = "hostile.example"


# ---------------------------------------------------------------- the loopback world

@pytest.fixture(scope="module")
def rdap():
    """The registry's RDAP server (the bootstrap names it: trusted) and a well-behaved registrar's, on
    127.0.0.1 (inside WHOIS_ALLOW_NETWORKS)."""
    srv = RdapServer().start()
    srv.default = ("notfound", {})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def w43():
    """IANA-like referral server (WHOIS_REFERRAL_SERVER: trusted), then a registry and two registrars
    reached through referrals: port 4343, each on an address of its own inside WHOIS_ALLOW_NETWORKS."""
    iana = Whois43Server().start()
    others = [start_on_referral_port(Whois43Server) for _ in range(3)]
    yield (iana, *others)
    for s in (iana, *others):
        s.stop()


@pytest.fixture(scope="module")
def canaries():
    """Servers nothing may reach: HTTP-port canary on 127.0.0.3; port-43 canaries on 4343 outside the
    allowed networks and inside them (for the hop and host limits), and one on 6379 inside them."""
    made = {"http": Canary(CANARY_HOST).start(), "w43": start_on_referral_port(Canary, net=CANARY_NET),
            "w43_allowed": start_on_referral_port(Canary), "redis": start_on_referral_port(Canary, port=6379)}
    yield made
    for c in made.values():
        c.stop()


@pytest.fixture(autouse=True)
def _count_from_zero(canaries):
    """Each test counts its own canary connections (one leak must not fail every later test)."""
    for c in canaries.values():
        with c.lock:
            c.connections.clear()


@pytest.fixture(scope="module")
def nsd_port(tmp_path_factory, w43, canaries):
    """nsd answering for the servers' host names (and for names that point where nothing may go)."""
    need_nsd()
    records = ["registry 300 IN A 127.0.0.1", "ok 300 IN A 127.0.0.1", f"canary 300 IN A {CANARY_HOST}",
               f"canary43 300 IN A {canaries['w43'].host}", "metadata 300 IN A 169.254.169.254",
               "internal 300 IN A 10.20.30.40", "mixed 300 IN A 127.0.0.1", "mixed 300 IN A 10.1.2.3",
               "loop6 300 IN AAAA ::1", f"registrar43 300 IN A {w43[2].host}"]
    zone = "\n".join([f"@ 3600 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 7200 3600 1209600 300",
                      f"@ 3600 IN NS ns1.{ZONE}.", "ns1 3600 IN A 127.0.0.1", *records]) + "\n"
    proc, port = start_nsd({ZONE + ".": zone}, tmp_path_factory.mktemp("nsd-hostile"))
    yield port
    stop_nsd(proc)


@pytest.fixture(scope="module")
def boot(tmp_path_factory, rdap):
    """.com at the registry by address, .org at the same registry by host name; .net has no RDAP."""
    d = tmp_path_factory.mktemp("boot")
    head = {"version": "1.0", "publication": "2026-10-01T00:00:00Z", "description": "test"}
    services = {"dns.json": [[["com"], [rdap.base + "reg/"]],
                             [["org"], [f"http://registry.{ZONE}:{rdap.port}/reg/"]]],
                "ipv4.json": [[["8.0.0.0/8"], [rdap.base + "arin/"]]], "ipv6.json": []}
    for name, svc in services.items():
        (d / name).write_text(json.dumps(dict(head, services=svc)))
    return d


@pytest.fixture(scope="module")
def settings(boot, w43, nsd_port):
    return dataclasses.replace(
        Settings(), rdap_bootstrap_dir=str(boot), whois_timeout=TIMEOUT, whois_max_bytes=256 * 1024,
        whois_referral_server=w43[0].label, dns_servers=(("127.0.0.1", nsd_port),), dns_timeout=0.5,
        dns_retries=0, whois_allow_networks=parse_networks("WHOIS_ALLOW_NETWORKS", ALLOW_NETWORKS))


def origin(url: str) -> str:
    from scout.whois.rdap import origin as o
    return o(url)


def connections(*servers) -> int:
    return sum(len(s.connections) for s in servers)


def registry_only(res: dict, name: str) -> None:
    """The lookup kept the registry's RDAP answer, and only it."""
    p = res["parsed"]
    assert p["status"] == "ok" and p["registrar"] == "RESERVED-Internet Assigned Numbers Authority", p
    assert p["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net"]
    assert json.loads(res["raw"])["ldhName"] == name.upper()


# ---------------------------------------------------------------- RDAP related links

@pytest.mark.parametrize("link,outcome", [
    ("http://{canary}/registrar/domain/{name}", "refused: address 127.0.0.3 not allowed"),
    ("https://canary.{zone}:{port}/registrar/domain/{name}", "refused: address 127.0.0.3 not allowed"),
    ("https://metadata.{zone}/latest/meta-data/", "refused: address 169.254.169.254 not allowed"),
    ("https://internal.{zone}:6379/", "refused: address 10.20.30.40 not allowed"),
    ("https://mixed.{zone}:{port}/", "refused: address 10.1.2.3 not allowed"),   # one bad address is enough
    ("https://loop6.{zone}:{port}/", "refused: address ::1 not allowed"),
    ("https://[::1]:{port}/x", "refused: address ::1 not allowed"),
    ("http://[::ffff:127.0.0.3]:{port}/x", "refused: address 127.0.0.3 not allowed"),
    # Spellings the system resolver (inet_aton) would read as 127.0.0.3 / 127.0.0.1 are names here: nsd
    # is authoritative for other names only and refuses them, and nothing is connected to.
    ("http://2130706435:{port}/x", "error: dns failure"),
    ("http://127.1:{port}/x", "error: dns failure"),
])
def test_related_link_to_a_forbidden_target_is_refused_and_the_registry_answer_lands(
        rdap, canaries, settings, link, outcome):
    canary = canaries["http"]
    name = f"rel{abs(hash(link)) % 10**8}.com"
    href = link.format(canary=canary.label, port=canary.port, zone=ZONE, name=name)
    rdap.route(f"/reg/domain/{name}", "domain", related=href)
    res = lookup_domain(name, settings)
    registry_only(res, name)
    p = res["parsed"]
    assert p["registrar_status"] == outcome
    assert p["hops"] == [{"server": rdap.base + "reg/", "status": "ok"}, {"server": origin(href), "status": outcome}]
    assert p["servers"] == [rdap.base + "reg/", origin(href)]
    assert len(res["refused"]) == (1 if outcome.startswith("refused") else 0)
    assert connections(canary) == 0


def test_allowed_related_link_is_followed_and_domain_whois_is_one_json_value(rdap, settings):
    rdap.route("/reg/domain/both.com", "domain", related=f"http://ok.{ZONE}:{rdap.port}/registrar/domain/both.com")
    rdap.route("/registrar/domain/both.com", "registrar_domain")
    res = lookup_domain("both.com", settings)
    p = res["parsed"]
    assert p["status"] == "ok" and "registrar_status" not in p and res["refused"] == []
    assert p["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net", "c.iana-servers.net"]
    doc = json.loads(res["raw"])                         # one JSON value, not two texts
    assert set(doc) == {"registry", "registrar"}
    assert doc["registry"]["ldhName"] == "BOTH.COM" and doc["registrar"]["ldhName"] == "both.com"
    assert [h["status"] for h in p["hops"]] == ["ok", "ok"]


def test_registrar_rdap_answer_about_another_domain_is_not_merged(rdap, settings):
    rdap.route("/reg/domain/asked.com", "domain", related=rdap.base + "registrar/domain/asked.com")
    rdap.route("/registrar/domain/asked.com", "registrar_domain", name="someone-else.com")
    res = lookup_domain("asked.com", settings)
    registry_only(res, "asked.com")
    assert res["parsed"]["registrar_status"] == "error: answer for another domain"
    assert "someone-else" not in res["raw"]


# ---------------------------------------------------------------- redirects

def test_a_redirect_of_the_registry_itself_is_a_learned_target(rdap, canaries, settings):
    canary = canaries["http"]
    rdap.route("/reg/domain/moved.com", "redirect", location=f"http://{canary.label}/reg/domain/moved.com")
    res = lookup_domain("moved.com", settings)
    assert res["parsed"]["status"] == "error: refused: address 127.0.0.3 not allowed"
    assert res["parsed"]["hops"] == [{"server": rdap.base + "reg/",
                                      "status": "refused: address 127.0.0.3 not allowed"}]
    assert len(res["refused"]) == 1 and connections(canary) == 0


def test_a_redirect_of_the_registrar_to_a_canary_keeps_the_registry_answer(rdap, canaries, settings):
    canary = canaries["http"]
    rdap.route("/reg/domain/regmoved.com", "domain", related=rdap.base + "registrar/domain/regmoved.com")
    rdap.route("/registrar/domain/regmoved.com", "redirect", code=307, location=f"https://canary.{ZONE}:{canary.port}/")
    res = lookup_domain("regmoved.com", settings)
    registry_only(res, "regmoved.com")
    assert res["parsed"]["registrar_status"] == "refused: address 127.0.0.3 not allowed"
    assert connections(canary) == 0


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "//127.0.0.3:80/x"])
def test_a_redirect_to_another_scheme_or_a_canary_by_relative_url_is_refused(rdap, canaries, settings, location):
    name = f"scheme{abs(hash(location)) % 10**8}.com"
    rdap.route(f"/reg/domain/{name}", "domain", related=rdap.base + f"registrar/domain/{name}")
    rdap.route(f"/registrar/domain/{name}", "redirect", location=location)
    res = lookup_domain(name, settings)
    registry_only(res, name)
    assert res["parsed"]["registrar_status"].startswith("refused: ")
    assert connections(*canaries.values()) == 0


def test_http_is_refused_for_learned_urls_by_default(rdap, settings):
    """With the default (empty) WHOIS_ALLOW_NETWORKS a learned URL must be https: a registry redirect or
    a related link to http is refused before any name resolution or connection."""
    default = dataclasses.replace(settings, whois_allow_networks=())
    rdap.route("/reg/domain/plain.com", "redirect", location=rdap.base + "reg/domain/plain-elsewhere.com")
    rdap.route("/reg/domain/plainrel.com", "domain", related=rdap.base + "registrar/domain/plainrel.com")
    before = len(rdap.requests)
    assert lookup_domain("plain.com", default)["parsed"]["status"] == "error: refused: http (https required)"
    res = lookup_domain("plainrel.com", default)
    registry_only(res, "plainrel.com")
    assert res["parsed"]["registrar_status"] == "refused: http (https required)"
    assert [p for _, p in rdap.requests[before:]] == ["/reg/domain/plain.com", "/reg/domain/plainrel.com"]


def test_ip_rdap_redirect_to_a_canary_is_refused(rdap, canaries, settings):
    canary = canaries["http"]
    rdap.route("/arin/ip/8.8.8.8", "redirect", location=f"http://{canary.label}/ip/8.8.8.8")
    res = lookup_ip("8.8.8.8", settings)
    assert res["info"]["status"] == "error: refused: address 127.0.0.3 not allowed"
    assert len(res["refused"]) == 1 and connections(canary) == 0
    rdap.route("/arin/ip/8.8.8.8", "ip", sample=ARIN_8_8_8)


# ---------------------------------------------------------------- port-43 referrals

@pytest.mark.parametrize("referral,outcome", [
    ("{w43}", "refused: address {w43_host} not allowed"),
    ("canary43.{zone}:4343", "refused: address {w43_host} not allowed"),
    ("{redis}", "refused: port 6379 (43 and 4343 only)"),            # inside the allowed networks
    ("metadata.{zone}", "refused: address 169.254.169.254 not allowed"),
    ("internal.{zone}:4343", "refused: address 10.20.30.40 not allowed"),
    ("rwhois://{allowed_host}:4321", "refused: port 4321 (43 and 4343 only)"),
])
def test_registrar_referral_to_a_forbidden_target_is_refused_and_the_registry_answer_lands(
        w43, canaries, settings, referral, outcome):
    iana, registry = w43[:2]
    name = f"ref{abs(hash(referral)) % 10**8}.net"
    values = dict(w43=canaries["w43"].label, w43_host=canaries["w43"].host, redis=canaries["redis"].label,
                  zone=ZONE, allowed_host=canaries["w43_allowed"].host)
    ref = referral.format(**values)
    iana.route(name, "iana", referral=registry.label)
    registry.route(name, "thin", referral=ref)
    res = lookup_domain(name, settings)
    p, expected = res["parsed"], outcome.format(**values)
    assert p["status"] == "ok" and p["server"] == registry.label, p
    assert p["registrar"] == "RESERVED-Internet Assigned Numbers Authority"
    assert p["registrar_status"] == expected and len(res["refused"]) == 1
    assert [h["status"] for h in p["hops"]] == ["referral", "ok", expected]
    assert connections(*canaries.values()) == 0


def test_the_registry_named_by_the_referral_server_is_checked_too(w43, canaries, settings):
    iana = w43[0]
    iana.route("evilreg.net", "iana", referral=canaries["w43"].label)
    res = lookup_domain("evilreg.net", settings)
    assert res["parsed"]["status"] == f"error: refused: address {canaries['w43'].host} not allowed"
    assert "refer:" in res["raw"] and connections(canaries["w43"]) == 0


def test_port43_chain_by_host_name_and_text_kept_apart(w43, settings):
    iana, registry, registrar = w43[:3]
    iana.route("byname.net", "iana", referral=registry.label)
    registry.route("byname.net", "thin", referral=f"registrar43.{ZONE}:4343")
    registrar.route("byname.net", "registrar", referral=f"registrar43.{ZONE}:4343")   # names itself
    res = lookup_domain("byname.net", settings)
    p = res["parsed"]
    assert p["status"] == "ok" and "registrar_status" not in p, p
    assert p["servers"] == [iana.label, registry.label, f"registrar43.{ZONE}:4343"]
    assert "c.iana-servers.net" in p["nameservers"]
    # One text, each answer under its own header line, in query order.
    heads = [line for line in res["raw"].splitlines() if line.startswith("=== ")]
    assert heads == [f"=== {iana.label} ===", f"=== {registry.label} ===", f"=== registrar43.{ZONE}:4343 ==="]
    assert res["raw"].index("refer:") < res["raw"].index("Registry Domain ID") < res["raw"].index("abuse@registrar")


def test_registrar_port43_answer_about_another_domain_is_not_merged(w43, settings):
    iana, registry, registrar = w43[:3]
    iana.route("mine.net", "iana", referral=registry.label)
    registry.route("mine.net", "thin", referral=registrar.label)
    registrar.route("mine.net", "registrar", name="theirs.net")
    res = lookup_domain("mine.net", settings)
    p = res["parsed"]
    assert p["status"] == "ok" and p["registrar_status"] == "error: answer for another domain"
    assert p["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net"]     # the registry's only
    assert "theirs.net" not in res["raw"]


# ---------------------------------------------------------------- hop and host limits

def test_rdap_fourth_hop_is_refused(rdap, canaries, settings):
    """related (1) -> redirect (2) -> redirect (3) -> redirect (4: refused, though the target is allowed)."""
    trap = canaries["w43_allowed"]
    rdap.route("/reg/domain/hops.com", "domain", related=rdap.base + "a/domain/hops.com")
    rdap.route("/a/domain/hops.com", "redirect", location="/b/domain/hops.com")
    rdap.route("/b/domain/hops.com", "redirect", location="/c/domain/hops.com")
    rdap.route("/c/domain/hops.com", "redirect", location=f"http://{trap.label}/d/domain/hops.com")
    res = lookup_domain("hops.com", settings)
    registry_only(res, "hops.com")
    assert res["parsed"]["registrar_status"] == "refused: more than 3 hops"
    assert connections(trap) == 0


def test_rdap_third_host_beyond_the_registry_is_refused(rdap, canaries, settings):
    """registry -> related to host A -> redirect to host B -> redirect to host C (the third: refused)."""
    a, b = start_on_referral_port(RdapServer, port=0), start_on_referral_port(RdapServer, port=0)
    trap = canaries["w43_allowed"]
    try:
        rdap.route("/reg/domain/hosts.com", "domain", related=a.base + "domain/hosts.com")
        a.route("/domain/hosts.com", "redirect", location=b.base + "domain/hosts.com")
        b.route("/domain/hosts.com", "redirect", location=f"http://{trap.label}/domain/hosts.com")
        res = lookup_domain("hosts.com", settings)
    finally:
        a.stop()
        b.stop()
    registry_only(res, "hosts.com")
    assert res["parsed"]["registrar_status"] == "refused: more than 2 hosts beyond the registry"
    assert a.requests and b.requests and connections(trap) == 0


def test_port43_fourth_hop_is_refused(w43, canaries, settings):
    """IANA -> registry (1) -> registrar A (2) -> registrar B (3) -> anything further (4: refused)."""
    iana, registry, a, b = w43
    trap = canaries["w43_allowed"]
    iana.route("deep.net", "iana", referral=registry.label)
    registry.route("deep.net", "thin", referral=a.label)
    a.route("deep.net", "registrar", referral=b.label)
    b.route("deep.net", "registrar", referral=trap.label)
    res = lookup_domain("deep.net", settings)
    p = res["parsed"]
    assert p["status"] == "ok" and p["registrar_status"] == "refused: more than 3 hops", p
    assert p["servers"] == [iana.label, registry.label, a.label, b.label, trap.label]
    assert connections(trap) == 0


# ---------------------------------------------------------------- DNS: one resolution, through DNS_SERVER

def _rebinding_pair(cls, port: int = 0):
    """A server on an allowed address and a canary on a forbidden one, on the same port."""
    for _ in range(20):
        srv = start_on_referral_port(cls, port=port)
        try:
            return srv, start_on_referral_port(Canary, port=srv.port, net=CANARY_NET)
        except RuntimeError:
            srv.stop()
    raise RuntimeError("no port free on both addresses")


def test_dns_rebinding_between_check_and_connect_is_impossible(rdap, w43, settings):
    """The registrar's name answers an allowed address first and a canary's the second time: the lookup
    resolves once and connects to the address it checked (RDAP and port 43)."""
    registrar, canary = _rebinding_pair(RdapServer)
    iana, registry = w43[:2]
    w_registrar, w_canary = _rebinding_pair(Whois43Server, 4343)
    script = {("rebind.hostile.test", "A"): [[registrar.host], [canary.host]],
              ("rebind43.hostile.test", "A"): [[w_registrar.host], [w_canary.host]]}
    try:
        with ScriptedDns(script) as dns_srv:
            s = dataclasses.replace(settings, dns_servers=(("127.0.0.1", dns_srv.port),))
            rdap.route("/reg/domain/rebind.com", "domain",
                       related=f"http://rebind.hostile.test:{registrar.port}/registrar/domain/rebind.com")
            registrar.route("/registrar/domain/rebind.com", "registrar_domain")
            res = lookup_domain("rebind.com", s)
            iana.route("rebind.net", "iana", referral=registry.label)
            registry.route("rebind.net", "thin", referral=f"rebind43.hostile.test:{w_registrar.port}")
            w_registrar.route("rebind.net", "registrar")
            res43 = lookup_domain("rebind.net", s)
            asked = dns_srv.asked("rebind.hostile.test"), dns_srv.asked("rebind43.hostile.test")
    finally:
        for x in (registrar, canary, w_registrar, w_canary):
            x.stop()
    assert res["parsed"]["status"] == "ok" and "registrar_status" not in res["parsed"], res["parsed"]
    assert set(json.loads(res["raw"])) == {"registry", "registrar"}
    assert res43["parsed"]["status"] == "ok" and "registrar_status" not in res43["parsed"], res43["parsed"]
    assert "c.iana-servers.net" in res43["parsed"]["nameservers"]
    assert asked == (1, 1)                                   # one resolution each
    assert connections(canary, w_canary) == 0


def test_server_names_resolve_through_dns_server_from_the_source_address(settings, tmp_path):
    """The bootstrap may name the registry by host name: it resolves through DNS_SERVER (the system
    resolver knows nothing of these names), from the lookup's source address, A only for an IPv4 source."""
    bound = RdapServer(require_peer="127.0.0.2").start()
    bound.default = ("domain", {})
    for f, services in (("dns.json", [[["com"], [f"http://registry.hostile.test:{bound.port}/"]]]),
                        ("ipv4.json", []), ("ipv6.json", [])):
        (tmp_path / f).write_text(json.dumps({"services": services}))
    try:
        with ScriptedDns({("registry.hostile.test", "A"): [["127.0.0.1"]]}) as dns_srv:
            s = dataclasses.replace(settings, dns_servers=(("127.0.0.1", dns_srv.port),),
                                    rdap_bootstrap_dir=str(tmp_path))
            res = lookup_domain("named.com", s, source_ip="127.0.0.2")
            queries = list(dns_srv.queries)
    finally:
        bound.stop()
    assert res["parsed"]["status"] == "ok", res["parsed"]
    assert bound.requests == [("127.0.0.2", "/domain/named.com")]
    assert queries == [("127.0.0.2", "registry.hostile.test", "A")]


def test_tls_keeps_the_host_name_for_sni_and_the_certificate(rdap, tmp_path, monkeypatch, settings):
    """A learned https URL: the connection goes to the checked address, while SNI and the certificate
    check use the name. A certificate for another name is refused."""
    ca = TestCA(tmp_path / "ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.pem))         # OpenSSL's default store: trust the test CA
    sni: list = []
    good = RdapServer(tls=ca.server_context("tls.hostile.test", sni)).start()
    bad = RdapServer(tls=ca.server_context("someone-else.test", sni)).start()
    try:
        with ScriptedDns({("tls.hostile.test", "A"): [["127.0.0.1"]]}) as dns_srv:
            s = dataclasses.replace(settings, dns_servers=(("127.0.0.1", dns_srv.port),))
            for srv, name in ((good, "tlsok.com"), (bad, "tlsbad.com")):
                srv.route(f"/registrar/domain/{name}", "registrar_domain")
                rdap.route(f"/reg/domain/{name}", "domain",
                           related=f"https://tls.hostile.test:{srv.port}/registrar/domain/{name}")
            ok, refused = lookup_domain("tlsok.com", s), lookup_domain("tlsbad.com", s)
    finally:
        good.stop()
        bad.stop()
    assert ok["parsed"]["status"] == "ok" and "registrar_status" not in ok["parsed"], ok["parsed"]
    assert json.loads(ok["raw"])["registrar"]["ldhName"] == "tlsok.com"
    assert refused["parsed"]["registrar_status"] == "error: connection error"
    assert not bad.requests and sni == ["tls.hostile.test", "tls.hostile.test"]


# ---------------------------------------------------------------- issue 14: unreachable registrars

@pytest.mark.parametrize("kind,outcome", [
    ("down", "error: connection failed"),
    ("blackholed", "error: timeout"),
    ("unknown host", "error: unknown host"),
    ("dns never answers", "error: dns timeout"),
])
def test_unreachable_registrar_never_holds_the_lookup(w43, settings, kind, outcome):
    iana, registry = w43[:2]
    name = f"unreach{kind.replace(' ', '')}.net"
    script = {("silent.hostile.test", "A"): None}
    hole = None
    if kind == "down":
        c = start_on_referral_port(Canary)
        ref = c.label
        c.stop()                                  # nothing listens there any more
    elif kind == "blackholed":
        hole = start_on_referral_port(Blackhole)
        ref = hole.label
    else:
        ref = f"nohost.{ZONE}:4343" if kind == "unknown host" else "silent.hostile.test:4343"
    iana.route(name, "iana", referral=registry.label)
    registry.route(name, "thin", referral=ref)
    try:
        with ScriptedDns(script) as silent:
            s = settings if kind != "dns never answers" else dataclasses.replace(
                settings, dns_servers=(("127.0.0.1", silent.port),), dns_timeout=60.0)   # longer than SLACK
            t = time.monotonic()
            res = lookup_domain(name, s)
            took = time.monotonic() - t
    finally:
        if hole:
            hole.stop()
    p = res["parsed"]
    assert p["status"] == "ok" and p["server"] == registry.label and p["registrar_status"] == outcome, p
    assert p["hops"][-1] == {"server": ref, "status": outcome} and res["refused"] == []
    assert "Registry Domain ID" in res["raw"]
    assert took < 2 * TIMEOUT + SLACK            # the lookup's own deadline, whatever the hop did


def test_only_an_unreachable_registry_is_a_retry(w43, settings):
    """Through the lookup task's plain function: a registry that cannot be reached (down, or its name
    unresolvable for want of a DNS answer) raises WhoisServerDown (the task retries, nothing is cached);
    a registry that answered while its registrar could not be reached is a result, cached."""
    from scout.stages import whois as pipeline
    from scout.store import MemoryStore

    iana, registry = w43[:2]
    store = MemoryStore()
    gone = start_on_referral_port(Canary)
    down = gone.label
    gone.stop()
    iana.route("regdown.net", "iana", referral=down)
    iana.route("regsilent.net", "iana", referral="silent.hostile.test:4343")
    iana.route("rardown.net", "iana", referral=registry.label)
    registry.route("rardown.net", "thin", referral=down)
    with ScriptedDns({("silent.hostile.test", "A"): None}) as silent:
        quiet = dataclasses.replace(settings, dns_servers=(("127.0.0.1", silent.port),))
        for name, s in (("regdown.net", settings), ("regsilent.net", quiet)):
            with pytest.raises(pipeline.WhoisServerDown):
                pipeline.lookup_domain_cached(name, s, store, None, lookup_domain)
            assert store.get_json("dw:" + name) is None
    result, queried = pipeline.lookup_domain_cached("rardown.net", settings, store, None, lookup_domain)
    assert queried and result["parsed"]["registrar_status"] == "error: connection failed"
    assert store.get_json("dw:rardown.net")["parsed"]["status"] == "ok"
    assert store.counters()["whois_server_down"] == 2


# ---------------------------------------------------------------- the address check itself

@pytest.mark.parametrize("addr,ok", [
    ("8.8.8.8", True), ("2606:4700::1111", True), ("::ffff:8.8.8.8", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("239.255.255.250", False), ("255.255.255.255", False), ("192.0.2.1", False), ("198.18.0.1", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff0e::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:169.254.169.254", False), ("2002:a9fe:a9fe::1", False),
    ("2002:808:808::1", True), ("64:ff9b::a9fe:a9fe", False), ("2001:db8::1", False),
])
def test_global_unicast(addr, ok):
    assert is_global_unicast(addr) is ok


def test_whois_allow_networks_setting():
    s = load_settings({"WHOIS_ALLOW_NETWORKS": " 127.0.0.0/8, 10.1.2.3 ,fd00::/8"}, dotenv=None)
    assert s.whois_allow_networks == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.1.2.3/32"),
                                      ipaddress.ip_network("fd00::/8"))
    assert load_settings({}, dotenv=None).whois_allow_networks == ()          # default: nothing non-global
    with pytest.raises(ConfigError, match="WHOIS_ALLOW_NETWORKS"):
        load_settings({"WHOIS_ALLOW_NETWORKS": "127.0.0.0/33"}, dotenv=None)
    assert ipaddress.ip_network(REFERRAL_NET).overlaps(ipaddress.ip_network("127.0.0.0/8"))   # tests' layout
    assert not any(ipaddress.ip_address(CANARY_HOST) in n for n in parse_networks("x", ALLOW_NETWORKS))


# ---------------------------------------------------------------- end to end: `scout run --source`

@pytest.fixture
def redis11():
    yield from emptied_redis(redis_db(11))


@pytest.mark.slow
def test_scout_run_with_hostile_answers_and_unreachable_registrars_lands_every_document(
        tmp_path, redis11, rdap, w43, canaries, nsd_port, boot):
    """Default WHOIS settings (WHOIS_TIMEOUT 10s, one lookup a second): registries whose answers point at
    canaries, the cloud metadata address, an internal network and port 6379, and registrars that are
    down, black-holed or unknown. The run finishes, every document carries the registry's answer and
    the hop's fate, no canary sees a connection, and `scout stats` counts the refusals."""
    iana, registry = w43[:2]
    canary, canary43, redis_trap = canaries["http"], canaries["w43"], canaries["redis"]
    hole = start_on_referral_port(Blackhole)
    gone = start_on_referral_port(Canary)
    down = gone.label
    gone.stop()                                          # nothing listens there any more
    rdap.route("/reg/domain/e2e-related.com", "domain", related=f"http://{canary.label}/domain/e2e-related.com")
    rdap.route("/reg/domain/e2e-redirect.com", "domain", related=rdap.base + "registrar/domain/e2e-redirect.com")
    rdap.route("/registrar/domain/e2e-redirect.com", "redirect", location=f"https://metadata.{ZONE}/latest/")
    rdap.route("/reg/domain/e2e-fine.com", "domain", related=rdap.base + "registrar/domain/e2e-fine.com")
    rdap.route("/registrar/domain/e2e-fine.com", "registrar_domain")
    referrals = {"e2e-canary.net": canary43.label, "e2e-redis.net": redis_trap.label,
                 "e2e-internal.net": f"internal.{ZONE}:4343", "e2e-down.net": down,
                 "e2e-hole.net": hole.label, "e2e-nohost.net": f"nohost.{ZONE}:4343"}
    for name, ref in referrals.items():
        iana.route(name, "iana", referral=registry.label)
        registry.route(name, "thin", referral=ref)
    expected = {
        "e2e-related.com": "refused: address 127.0.0.3 not allowed",
        "e2e-redirect.com": "refused: address 169.254.169.254 not allowed",
        "e2e-fine.com": None,
        "e2e-canary.net": f"refused: address {canary43.host} not allowed",
        "e2e-redis.net": "refused: port 6379 (43 and 4343 only)",
        "e2e-internal.net": "refused: address 10.20.30.40 not allowed",
        "e2e-down.net": "error: connection failed",
        "e2e-hole.net": "error: timeout",
        "e2e-nohost.net": "error: unknown host",
    }
    # No broker (scout run's default, in-process); the shared store in Redis so `scout stats` reads it.
    env = scout_env(REDIS_URL=redis11, DNS_SERVER=f"127.0.0.1:{nsd_port}",
                    RDAP_BOOTSTRAP_DIR=str(boot), WHOIS_REFERRAL_SERVER=iana.label,
                    WHOIS_ALLOW_NETWORKS=ALLOW_NETWORKS, OUTPUT_DIR=str(tmp_path / "out"))
    source = tmp_path / "names.jsonl"
    source.write_text(json.dumps({"message_type": "dns_entries", "data": sorted(expected)}) + "\n")
    try:
        r = run_scout(["run", "--source", str(source)], env, timeout=240)
    finally:
        hole.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["saved"] == summary["whois_lookups"] == len(expected)
    docs = read_documents(tmp_path / "out")
    validate_documents(docs)
    assert set(docs) == set(expected)
    for name, outcome in expected.items():
        p = docs[name]["domain_whois_parsed"]
        assert p["status"] == "ok" and p["registrar"] == "RESERVED-Internet Assigned Numbers Authority", (name, p)
        assert p.get("registrar_status") == outcome, (name, p)
        assert docs[name]["domain_whois"], name                      # the registry's answer landed
    assert set(json.loads(docs["e2e-fine.com"]["domain_whois"])) == {"registry", "registrar"}
    assert connections(*canaries.values()) == 0
    stats = run_scout(["stats", "--json"], env)
    assert stats.returncode == 0, stats.stderr[-2000:]
    assert json.loads(stats.stdout)["counters"]["whois_target_refused"] == 5
    text = run_scout(["stats"], env)
    assert "refused targets=5" in text.stdout, text.stdout

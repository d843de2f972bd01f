"""Issue 14, IP WHOIS per address: one RDAP network object for a whole /8 over addresses of different BGP
prefixes. Each address keeps its own ASN, `asn_cidr` always contains the address, and the answer is
cached under the narrower of the RDAP network and the BGP prefix (never the whole /8). Real RDAP server
and nsd (Team Cymru-style TXT) on loopback, real Redis store."""
from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json

import pytest

from scout.config import Settings, parse_networks
from scout.stages.ipcache import cache_ip_result, cached_ip_results
from scout.stages.whois import lookup_ip_cached
from scout.store import RedisStore
from scout.whois.ip import answer_cover, lookup_ip
from tests.conftest import emptied_redis, redis_db
from tests.servers.base import ALLOW_NETWORKS
from tests.servers.rdap import ARIN_8_8_8, RdapServer
from tests.support.names import CYMRU, EXPECTED_ASN, WIDE_8
from tests.servers.rdap import write_bootstrap


@pytest.fixture(scope="module")
def cymru_dns(tmp_path_factory):
    from tests.servers.dns_nsd import find_nsd, start_nsd, stop_nsd
    from tests.support.whois import public_zones

    if not find_nsd():
        pytest.skip("nsd not installed")
    proc, port = start_nsd(public_zones({}, CYMRU), tmp_path_factory.mktemp("nsd-cymru"))
    yield port
    stop_nsd(proc)


@pytest.fixture
def world(tmp_path, cymru_dns):
    srv = RdapServer().start()
    for ip in EXPECTED_ASN:
        srv.route(f"/arin/ip/{ip}", "ip", sample=WIDE_8)
    boot = write_bootstrap(tmp_path / "boot", {}, {"8.0.0.0/8": srv.base + "arin/"})
    settings = dataclasses.replace(
        Settings(), rdap_bootstrap_dir=str(boot), whois_timeout=3.0, dns_servers=(("127.0.0.1", cymru_dns),),
        dns_timeout=1.0, dns_retries=0, whois_allow_networks=parse_networks("WHOIS_ALLOW_NETWORKS", ALLOW_NETWORKS))
    for url in emptied_redis(redis_db(14)):
        yield srv, settings, RedisStore(url)
    srv.stop()


def test_each_address_keeps_its_asn_inside_one_wide_network(world):
    srv, settings, store = world
    for ip in ("8.8.8.8", "8.1.2.3", "8.200.0.1"):
        result, queried = lookup_ip_cached(ip, settings, store, None, lookup_ip)
        info = result["info"]
        assert queried and info["status"] == "ok" and info["network_cidr"] == "8.0.0.0/8"
        assert (info["asn"], info["asn_cidr"]) == EXPECTED_ASN[ip], (ip, info)
        if info["asn_cidr"]:   # the longer 8.8.8.0/24 record for 8.1.2.3 does not contain it: ignored
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(info["asn_cidr"])
    assert sorted(p for _, p in srv.requests if p.startswith("/arin/ip/")) == \
        ["/arin/ip/8.1.2.3", "/arin/ip/8.200.0.1", "/arin/ip/8.8.8.8"]

    # Cached under RDAP network within BGP prefix: 8.8.8.9 shares 8.8.8.0/24 (a hit, AS15169), an address
    # elsewhere in the /8 and outside 8.1.0.0/16 has no answer (no route known: the address alone).
    hits = cached_ip_results(store, ["8.8.8.9", "8.1.200.1", "8.200.0.2", "8.128.0.1"], fresh=True)
    assert hits["8.8.8.9"]["info"]["asn"] == "15169"
    assert hits["8.1.200.1"]["info"]["asn"] == "3356"          # inside 8.1.0.0/16
    assert hits["8.200.0.2"] is None and hits["8.128.0.1"] is None
    keys = {k.decode() for k in store.r.keys("*ipnet:*")}
    assert keys and not any(k.endswith("ipnet:8.0.0.0/8") for k in keys), keys


def test_answer_cover_is_the_narrower_network_that_holds_the_address():
    a = ipaddress.ip_address("8.1.2.3")
    assert answer_cover(a, "8.0.0.0/8", "8.0.0.0/9") == "8.0.0.0/9"
    assert answer_cover(a, "8.1.2.0/24", "8.0.0.0/9") == "8.1.2.0/24"
    assert answer_cover(a, "8.0.0.0/8", "8.8.8.0/24") == "8.1.2.3/32"     # prefix not holding the address
    assert answer_cover(a, "8.0.0.0/8", None) == "8.1.2.3/32"             # no ASN: the address's alone
    assert answer_cover(a, "0.0.0.0/0", "8.0.0.0/9") == "8.1.2.3/32"      # an absurd network: no cache key


def test_an_older_wide_cache_entry_never_serves_another_prefix(world):
    """An answer stored under a whole /8 with one address's ASN (as before issue 14) is not served to an
    address outside its asn_cidr: that address is looked up for itself."""
    _, _, store = world
    old = {"raw": json.dumps(ARIN_8_8_8), "info": {"status": "ok", "asn": "15169", "asn_cidr": "8.8.8.0/24",
                                                    "network_cidr": "8.0.0.0/8"}}
    cache_ip_result(store, [ipaddress.ip_network("8.0.0.0/8")], copy.deepcopy(old), 3600)
    hits = cached_ip_results(store, ["8.8.8.77", "8.1.2.3"], fresh=True)
    assert hits["8.8.8.77"]["info"]["asn"] == "15169"
    assert hits["8.1.2.3"] is None


def test_ip_module_has_no_test_doubles():
    import scout.whois.ip as ip_module
    from pathlib import Path

    assert "unittest" not in Path(ip_module.__file__).read_text()


@pytest.mark.parametrize("ip", ["8.8.8.8", "193.0.6.139", "2001:4860:4860::8888", "2606:4700::",
                                "2a00:1450:4001:80b::200e"])
def test_the_net_built_without_a_system_resolver_matches_ipwhois(ip):
    """Without /etc/resolv.conf ipwhois's Net() cannot be built (it makes a system resolver nobody uses
    here); the stand-in has the same address fields and Cymru zone, and ipwhois's parsers accept it."""
    from ipwhois.asn import IPASN
    from ipwhois.net import Net

    from scout.whois.ip import _offline_net

    real, stand_in = Net(ip), _offline_net(Net, ip)
    assert (stand_in.address_str, stand_in.version, stand_in.dns_zone) == \
        (real.address_str, real.version, real.dns_zone)
    parsed = IPASN(stand_in).parse_fields_dns('"15169 | 8.8.8.0/24 | US | arin | 2023-12-28"')
    assert parsed["asn"] == "15169"


def test_ip_lookup_works_on_a_machine_without_a_resolver_configuration(world, monkeypatch):
    """As on a machine without /etc/resolv.conf: dnspython cannot configure a system resolver (the machine
    is simulated; the lookup, the RDAP server and nsd are real). The lookup asks DNS_SERVER anyway."""
    import dns.resolver

    def no_file(self, *a, **k):
        raise dns.resolver.NoResolverConfiguration("cannot open /etc/resolv.conf")

    monkeypatch.setattr(dns.resolver.Resolver, "read_resolv_conf", no_file)
    with pytest.raises(dns.resolver.NoResolverConfiguration):
        dns.resolver.Resolver()
    _, settings, _ = world
    info = lookup_ip("8.1.2.3", settings)["info"]
    assert info["status"] == "ok" and (info["asn"], info["asn_cidr"]) == EXPECTED_ASN["8.1.2.3"]

"""Issue 14, names and formats end to end: `scout run --source` (in-process workers) against nsd, an RDAP
server and Team Cymru-style TXT answers, all on loopback.

- private suffixes: every `*.github.io` / `*.herokuapp.com` name costs ONE lookup, about `github.io` /
  `herokuapp.com` (the ICANN view), and the documents say so in `registered_domain`;
- IDNA2008: `straße.de` is looked up and saved as `xn--strae-oqa.de`, never as `strasse.de`;
- one wide RDAP network (a /8) over addresses of different BGP prefixes: each keeps its own ASN and an
  `asn_cidr` that contains it;
- formats: SOA names with their final dot, `domain_whois` with a registrar hop is one JSON value, a
  registrar answering about another domain is not merged, `timestamp` is the time of the WHOIS write.
"""
from __future__ import annotations

import ipaddress
import json
import os
import time

import pytest

from tests.conftest import read_documents, run_scout, scout_env, validate_documents
from tests.servers.base import ALLOW_NETWORKS
from tests.servers.dns_nsd import find_nsd, start_nsd, stop_nsd
from tests.servers.rdap import RdapServer
from tests.support.names import ADDRESSES, CYMRU, EXPECTED_ASN, WIDE_8
from tests.servers.rdap import write_bootstrap
from tests.support.feed import dns_entries_file
from tests.support.whois import public_zones

class SlowRdap(RdapServer):
    """An RdapServer that holds the answers to `slow` paths for a while and notes the wall-clock time
    each request was answered at (a document's `timestamp` is compared with it)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.slow: dict[str, float] = {}
        self.answered: list[tuple[float, str]] = []

    def answer(self, h, mode, path, kw):
        time.sleep(self.slow.get(path, 0.0))
        super().answer(h, mode, path, kw)
        with self.lock:
            self.answered.append((time.time(), path))

    def paths(self, prefix: str) -> list[str]:
        with self.lock:
            return [p for _, p in self.answered if p.startswith(prefix)]


@pytest.fixture(scope="module")
def names_dns(tmp_path_factory):
    if not find_nsd():
        if os.environ.get("CI"):
            pytest.fail("nsd is not installed (scripts/setup.sh installs it)")
        pytest.skip("nsd not installed")
    records: dict[str, list[str]] = {"io.": [], "com.": [], "de.": []}
    for name, ip in ADDRESSES.items():
        zone = name.rsplit(".", 1)[1] + "."
        records[zone].append(f"{name[:-len(zone)]} 300 IN A {ip}")
    proc, port = start_nsd(public_zones(records, CYMRU), tmp_path_factory.mktemp("nsd-names"))
    yield f"127.0.0.1:{port}"
    stop_nsd(proc)


@pytest.fixture
def rdap():
    srv = SlowRdap().start()
    srv.default = ("domain", {})
    yield srv
    srv.stop()


def run_env(tmp_path, dns, rdap, **extra) -> dict:
    boot = write_bootstrap(tmp_path / "boot", {t: rdap.base + "reg/" for t in ("io", "com", "de")},
                           {"8.0.0.0/8": rdap.base + "arin/"})
    env = scout_env(DNS_SERVER=dns, RDAP_BOOTSTRAP_DIR=str(boot), WHOIS_REFERRAL_SERVER="127.0.0.1:9",
                    WHOIS_ALLOW_NETWORKS=ALLOW_NETWORKS, OUTPUT_DIR=str(tmp_path / "out"), DNS_WORKERS=4,
                    WHOIS_WORKERS=2, WHOIS_TIMEOUT="5s", DOMAIN_WHOIS_RATE="20ms", IP_WHOIS_RATE="20ms",
                    BATCH_SIZE=4, **extra)
    for k in ("BROKER_URL", "REDIS_URL"):
        env.pop(k, None)
    return env


def run_source(env, source) -> dict:
    r = run_scout(["run", "--source", str(source)], env, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_private_suffixes_idna2008_per_address_asn_and_formats(tmp_path, names_dns, rdap):
    related = rdap.base + "registrar/domain/github.io"
    rdap.route("/reg/domain/github.io", "domain", related=related)
    rdap.route("/registrar/domain/github.io", "registrar_domain")
    rdap.route("/reg/domain/herokuapp.com", "domain", related=rdap.base + "registrar/domain/herokuapp.com")
    rdap.route("/registrar/domain/herokuapp.com", "registrar_domain", name="another-domain.com")
    for ip in EXPECTED_ASN:
        rdap.route(f"/arin/ip/{ip}", "ip", sample=WIDE_8)
    rdap.slow["/reg/domain/github.io"] = 2.0   # lands well after the documents were first written
    names = ["a1.github.io", "B2.GitHub.io", "*.deep.c3.github.io", "shop.herokuapp.com",
             "api.herokuapp.com", "straße.de", "😀.de"]
    summary = run_source(run_env(tmp_path, names_dns, rdap),
                         dns_entries_file(tmp_path / "names.jsonl", [names[:3], names[3:]]))
    docs = read_documents(tmp_path / "out")
    assert set(docs) == set(ADDRESSES), sorted(docs)
    assert summary["skipped"].get("names_skipped_bad_idna") == 1        # the emoji name: counted, no crash
    validate_documents(docs)

    # One lookup per registered domain (ICANN section), never one per platform user's name.
    domain_paths = sorted(rdap.paths("/reg/domain/"))
    assert domain_paths == ["/reg/domain/github.io", "/reg/domain/herokuapp.com",
                            "/reg/domain/xn--strae-oqa.de"], domain_paths
    # three registered domains; four addresses (8.8.8.9 may find 8.8.8.8's /24 answer cached first)
    assert 3 + 3 <= summary["whois_lookups"] <= 3 + 4, summary
    for name, doc in docs.items():
        registered = {"io": "github.io", "com": "herokuapp.com", "de": "xn--strae-oqa.de"}[name.rsplit(".", 1)[1]]
        assert doc["registered_domain"] == registered, name
        assert doc["domain_whois_parsed"]["status"] == "ok", (name, doc["domain_whois_parsed"])
    assert docs["deep.c3.github.io"]["root_domain"] == "c3.github.io"         # the grouping as before
    assert docs["shop.herokuapp.com"]["root_domain"] == "shop.herokuapp.com"

    # The registrar hop: one JSON value for registry + registrar; an answer about another domain is not merged.
    gh = json.loads(docs["a1.github.io"]["domain_whois"])
    assert set(gh) == {"registry", "registrar"} and gh["registry"]["ldhName"] == "GITHUB.IO"
    assert gh["registrar"]["ldhName"].lower() == "github.io"
    heroku = docs["shop.herokuapp.com"]
    assert json.loads(heroku["domain_whois"])["ldhName"] == "HEROKUAPP.COM"    # the registry's object alone
    assert heroku["domain_whois_parsed"]["registrar_status"] == "error: answer for another domain"
    assert "another-domain.com" not in heroku["domain_whois"]

    # timestamp: the time of the write that brought the WHOIS answer (after the slow server answered).
    answered = min(t for t, p in rdap.answered if p == "/reg/domain/github.io")
    for name in ("a1.github.io", "b2.github.io", "deep.c3.github.io"):
        assert _epoch(docs[name]["timestamp"]) >= answered - 0.002, name
        assert docs[name]["first_seen"] < docs[name]["timestamp"]

    # SOA as the seed shows it: names with their final dot; MX unchanged (none here).
    assert docs["a1.github.io"]["soa_record"] == "ns1.io. hostmaster.io. 2026112801 7200 3600 1209600 300"
    assert docs["xn--strae-oqa.de"]["soa_record"].startswith("ns1.de. hostmaster.de. ")

    # Per-address ASN inside one wide RDAP network.
    for name, doc in docs.items():
        ip = ADDRESSES[name]
        info = doc["ip_info"][ip]
        assert info["status"] == "ok" and info["network_cidr"] == "8.0.0.0/8", (name, info)
        assert (info["asn"], info["asn_cidr"]) == EXPECTED_ASN[ip], (name, ip, info)
        if info["asn_cidr"]:
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(info["asn_cidr"])
    assert docs["b2.github.io"]["ip_info"]["8.1.2.3"]["asn_description"] == "LEVEL3, US"


def _epoch(iso: str) -> float:
    from datetime import datetime, timezone
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()

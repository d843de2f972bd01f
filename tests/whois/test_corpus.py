"""Port-43 parsing on real registry answers: the corpus in tests/data/whois-corpus/ (713 answers with the
values their sources expect) as pinned tests, the issue's goals on it, and a handful of its formats end to
end through lookup_domain against port-43 servers on loopback. Comparison rules: bench/whois_corpus.py.
"""
from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from bench.whois_corpus import CORPUS, FIELDS, check, load_corpus, score, unpaired
from scout.config import Settings, parse_networks
from scout.whois import RateLimited, lookup_domain
from scout.whois.bootstrap import to_alabel
from scout.whois.text import MAX_RATE_WAIT, classify
from tests.servers.base import ALLOW_NETWORKS, start_on_referral_port
from tests.servers.whois43 import Whois43Server

SAMPLES = load_corpus()
BY_ID = {s.id: s for s in SAMPLES}

# Samples deliberately not agreed with: {sample id: {field or "status": reason}}. Each is checked to still
# disagree, so a fix that makes one agree shows up here.
_CONTACT_AS_REGISTRAR = "the source took a contact's organisation as the registrar; the answer names none"
_FRED_HANDLE = ("CZ.NIC's FRED answer names the registrar by handle only; the source took a contact's "
                "organisation")
_SOURCES_DISAGREE = "sources disagree on this format: others want the registrar's name we read from its block"
_LAST_NS_DROPPED = "the source (WhoisDomain) drops the answer's last name server"
NOT_HANDLED: dict[str, dict[str, str]] = {
    "domain/google.cf": {"registrar": _CONTACT_AS_REGISTRAR},
    "domain/google.com.bo": {"registrar": _CONTACT_AS_REGISTRAR},
    "domain/google.com.pr": {"registrar": _CONTACT_AS_REGISTRAR},
    "domain/google.hr": {"registrar": _CONTACT_AS_REGISTRAR},
    "domain/google.ie": {"registrar": _CONTACT_AS_REGISTRAR},
    "domain/mhf.ir": {"registrar": _CONTACT_AS_REGISTRAR},
    "domain/google.co.tz": {"registrar": _FRED_HANDLE},
    "domain/google.cz": {"registrar": _FRED_HANDLE},
    "domain/google.it.ao": {"registrar": _FRED_HANDLE},
    "domain/google.mk": {"registrar": _FRED_HANDLE},
    "domain/google.sk": {"registrar": _SOURCES_DISAGREE + " (FAJNOR IP s. r. o., not FAJN-0002)"},
    "domain/nic.ua": {"registrar": _SOURCES_DISAGREE + " (NIC.UA LLC, not ua.nic)"},
    "domain/google.it__richardpenman-whois": {
        "registrar": "two of three sources want the .it registrar block's Name (MARKMONITOR-REG), this one its "
                     "Organization"},
    "domain/icu.ac.jp": {"registrar": "the source names the .jp registry (JPRS) as registrar; JPRS's answer names none"},
    "domain/meta.co.jp": {"registrar": "the source names the .jp registry (JPRS) as registrar; JPRS's answer names none"},
    "domain/meta.jp": {"registrar": "the source names the .jp registry (JPRS) as registrar; JPRS's answer names none"},
    "domain/registro.br": {"registrar": "the source took 'Nic.br' from the copyright notice; the answer names no registrar"},
    "domain/microsoft.com": {
        "registrar": "the source (python-whois) took the last of ~40 look-alike records' registrars; the record "
                     "of MICROSOFT.COM itself says TUCOWS INC."},
    "domain/amnic.net": {"name_servers": "the source's list holds 'dnssec:' and 'name' besides the three hosts"},
    "domain/anadolu.edu.tr": {"name_servers": _LAST_NS_DROPPED},
    "domain/dergipark.org.tr": {"name_servers": _LAST_NS_DROPPED},
    "domain/register.bg": {"name_servers": "the source keeps 4 of the 6 hosts the answer lists"},
    "domain/google.no": {"name_servers": "Norid's answer gives name-server handles (NSGO26H-NORID), no host names"},
    "domain/google.tk": {
        "expiration_date": "the source reads Freenom's 03/02/2020 day first; the same answer prints 12/18/2001, "
                           "so its dates are month first (weppos's .tk sample agrees)"},
    "domain/telia.ee": {"updated_date": "the source took the name-server contact's `changed:`, not the domain's"},
    "domain/hkirc.hk": {"status": "the whole answer is HKIRC's 'Please maintain at least 10-second time before "
                                  "starting another enquiry': a throttle, read as rate_limited"},
    "notfound/free.lu": {"status": "the whole answer is '%% Maximum query rate reached': a throttle, read as "
                                   "rate_limited"},
    "notfound/free.nz": {"status": "'query_status: 440 Request Denied' says nothing about the domain: no_data "
                                   "(an error, retried later)"},
    "notfound/whois.gandi.net__status_available": {
        "status": "an empty answer cannot be told from a server failure: no_data (an error, retried later)"},
}


def test_corpus_is_the_repositorys_copy():
    assert CORPUS.is_dir() and (CORPUS / "README.md").is_file()
    kinds = {k: sum(1 for s in SAMPLES if s.kind == k) for k in ("domain", "notfound", "throttled")}
    assert kinds == {"domain": 451, "notfound": 246, "throttled": 14}
    # one answer without its expected file and two expected files without an answer, as shipped
    assert unpaired() == ["domain/google.co.bw.txt", "domain/expected/google.co.json",
                          "domain/expected/google.com.json"]


def test_not_handled_list_names_real_samples():
    assert set(NOT_HANDLED) <= set(BY_ID)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_corpus_sample(sample):
    fields, status = classify(sample.domain, sample.text)
    res = check(sample, fields, status)
    skip = NOT_HANDLED.get(sample.id, {})
    if "status" in skip:
        assert not res["status_ok"], f"listed as not handled but now agrees: {sample.id} ({status})"
    else:
        assert res["status_ok"], f"status {status}, want {sample.want_status}"
    for key, ok in res["fields"].items():
        got, want = fields.get(FIELDS[key]), sample.expected.get(key)
        if key in skip:
            assert not ok, f"{key} listed as not handled but now agrees: {got!r}"
        else:
            assert ok, f"{key}: got {got!r}, want {want!r}"


def test_corpus_goals():
    """The issue's goals on the whole corpus: >= 97 % field agreement, >= 98 % of "no match" answers as
    not_found, throttling answers as rate_limited, no registered answer read as not_found or throttled
    (one is: hkirc.hk's sample is a throttle, see NOT_HANDLED)."""
    t = score(SAMPLES, classify)["total"]
    assert t["field_pct"] >= 97.0, t
    assert t["notfound_pct"] >= 98.0, t
    assert t["throttled_ok"] == t["throttled"], t
    assert t["registered_as_notfound"] == 0, t
    assert t["registered_as_throttled"] <= 1, t


# ---------------------------------------------------------------- end to end on loopback


@pytest.fixture(scope="module")
def servers():
    """An IANA-like referral server and a registry answering with the corpus's real texts (reached
    through a referral, so on port 4343 of an allowed address: referrals may name 43 or 4343 only)."""
    iana, registry = Whois43Server().start(), start_on_referral_port(Whois43Server)
    yield iana, registry
    iana.stop()
    registry.stop()


@pytest.fixture(scope="module")
def settings(servers, tmp_path_factory):
    """No TLD has RDAP here: every lookup goes to port 43, starting at the IANA-like server."""
    d = tmp_path_factory.mktemp("boot")
    head = {"version": "1.0", "publication": "2026-10-01T00:00:00Z", "description": "test", "services": []}
    for f in ("dns.json", "ipv4.json", "ipv6.json"):
        (d / f).write_text(json.dumps(head))
    return dataclasses.replace(Settings(), rdap_bootstrap_dir=str(d), whois_timeout=3.0,
                               whois_allow_networks=parse_networks("WHOIS_ALLOW_NETWORKS", ALLOW_NETWORKS),
                               whois_max_bytes=1024 * 1024, whois_referral_server=servers[0].label)


def _serve(servers, sample):
    """Route the sample's domain (as the A-label scout sends) to the registry answering its text."""
    iana, registry = servers
    name = to_alabel(sample.domain)
    iana.route(name, "iana", referral=registry.label)
    registry.route(name, "text", text=sample.text.encode("utf-8"))


# gTLD thick answer with four `Name Server:` lines and "Registrar Registration Expiration Date"; AFNIC
# key/value blocks (.fr .re); .ch / .li multi-line blocks; dd.mm.yyyy (.rs); JPRS [keys]; .kz padded keys;
# CNNIC / KRNIC / .ua registrar keys; TWNIC's "Record expires on ... (UTC+8)" under an IDN TLD
E2E_REGISTERED = ["domain/google.biz", "domain/ovh.fr", "domain/git.re", "domain/google.ch__weppos-whois-parser",
                  "domain/google.li", "domain/abc.rs", "domain/google.jp", "domain/ps.kz",
                  "domain/google.co.kr", "domain/google.com.ua__richardpenman-whois", "domain/apple.cn",
                  "domain/google.台灣"]


@pytest.mark.parametrize("sid", E2E_REGISTERED)
def test_lookup_domain_reads_real_formats(servers, settings, sid):
    sample = BY_ID[sid]
    assert sample.asserted, sid
    _serve(servers, sample)
    res = lookup_domain(sample.domain, settings)
    p = res["parsed"]
    assert p["source"] == "whois" and p["status"] == "ok", p
    assert p["servers"] == [servers[0].label, servers[1].label]
    assert sample.text.strip()[:40] in res["raw"]
    r = check(sample, p, "ok")
    assert all(r["fields"].values()), (r, p)


def test_lookup_domain_keeps_every_name_server(servers, settings):
    sample = BY_ID["domain/google.biz"]
    _serve(servers, sample)
    p = lookup_domain(sample.domain, settings)["parsed"]
    assert sorted(p["nameservers"]) == ["ns1.google.com", "ns2.google.com", "ns3.google.com", "ns4.google.com"]
    assert p["expires"] and p["created"] and p["updated"]


@pytest.mark.parametrize("sid", ["notfound/whois.nic.cl__status_available",      # "u34jedzcq.cl: no existe"
                                 "notfound/free.hu",                              # "Nincs találat / No match"
                                 "notfound/likexian-have-no-money-to-register.tk",  # "... not known in Dot TK"
                                 "notfound/free.africa",                          # "Available"
                                 "notfound/free.ar"])                             # "no se encuentra registrado"
def test_lookup_domain_no_match_wordings_are_not_found(servers, settings, sid):
    sample = BY_ID[sid]
    _serve(servers, sample)
    p = lookup_domain(sample.domain, settings)["parsed"]
    assert p["status"] == "not_found", p


@pytest.mark.parametrize("sid, wait", [("throttled/whois.eu__response_throttled", MAX_RATE_WAIT),
                                       ("throttled/whois.dns.be__response_throttled_limit", 2.0),
                                       ("throttled/whois.nic.fr__response_throttled", None),
                                       ("throttled/whois.denic.de__response_throttled", None)])
def test_lookup_domain_throttle_raises_rate_limited(servers, settings, sid, wait):
    sample = BY_ID[sid]
    name = sample.domain.replace("example.", f"throttle{len(sid)}.")
    iana, registry = servers
    iana.route(name, "iana", referral=registry.label)
    registry.route(name, "text", text=sample.text.encode("utf-8"))
    with pytest.raises(RateLimited) as ei:
        lookup_domain(name, settings)
    assert ei.value.server == registry.label
    assert ei.value.retry_after == wait


# ---------------------------------------------------------------- wordings of registries not in the corpus


@pytest.mark.parametrize("text, status", [
    ("Object_Not_Found\n", "not_found"),                                            # NIC Mexico
    ("example.nl is free\n", "not_found"),                                          # SIDN
    ("Domain example.tm - Available\n", "not_found"),
    ("Domain name example.bg does not exist in database!\n", "not_found"),
    ("We do not have an entry in our database matching your query.\n", "not_found"),  # SWITCH
    ("*** Nothing found for this query.\n", "not_found"),                           # KazNIC
    ("Data not found. This domain is available for registration.\n", "not_found"),
    ("%ERROR:101: no entries found\n", "not_found"),                                # CZ.NIC FRED
    ("No information available about domain name example.pl in the Registry NASK database.\n", "not_found"),
    ("Number of allowed queries exceeded.\n", "rate_limited"),
    ("Error: the query rate limit has been exceeded\n", "rate_limited"),
    ("Requests of this client are not permitted. Please use https://www.nic.ch/ for queries.\n", "rate_limited"),
    ("You have exceeded allowed connection rate.\n", "rate_limited"),
    ("IP Address Has Reached Rate Limit\n", "rate_limited"),
    ("% Access from your host has been disabled due to excessive querying.\n", "rate_limited"),
    ("Can't get information on non-local domain EXAMPLE.INFO\n", "not_found"),             # Tucows
    # terms of use that mention limits, in an answer that says "no match": not a throttle
    ("No match for \"EXAMPLE.INFO\".\nQueries to the Whois services are throttled. If too many queries are "
     "received from a single IP address within a specified time, the service will begin to reject further "
     "queries\nAccess to the whois service is rate limited.\n", "not_found"),
    # the same in a registered answer: the data wins over any wording
    ("Domain Name: example.info\nCreation Date: 2001-07-31T23:57:50Z\nName Server: ns1.example.net\n"
     "WHOIS LIMIT EXCEEDED would be printed instead when you query too fast. No match for other names.\n", "ok"),
])
def test_wordings_of_other_registries(text, status):
    assert classify("example.info", text)[1] == status


def test_rate_wait_is_read_and_bounded():
    from scout.whois.text import rate_wait

    assert rate_wait("-1: Still in grace period, wait 60 seconds") == 60.0
    assert rate_wait("% Excessive querying, grace period of 2 seconds") == 2.0
    assert rate_wait("try again in 5 minutes") == 300.0
    assert rate_wait("wait 7777777 seconds") == MAX_RATE_WAIT
    assert rate_wait("WHOIS LIMIT EXCEEDED") is None


# ---------------------------------------------------------------- hostile text


def _well_formed(fields: dict) -> None:
    from datetime import datetime

    for k in ("created", "updated", "expires"):
        assert fields[k] is None or datetime.fromisoformat(fields[k].replace("Z", "+00:00")).tzinfo is not None
    assert fields["registrar"] is None or 0 < len(fields["registrar"]) <= 256
    assert len(fields["nameservers"]) <= 64 and all("." in h and " " not in h for h in fields["nameservers"])
    assert len(fields["statuses"]) <= 32


@pytest.mark.slow
@hsettings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.text(max_size=3000), st.sampled_from([s for s in SAMPLES if s.kind == "domain"][::10]),
       st.integers(0, 4000), st.integers(0, 4000))
def test_hostile_text_never_crashes(noise, sample, cut, at):
    """Random text, and real answers cut short or with noise spliced in: an answer status, well-formed fields."""
    for text in (noise, sample.text[:cut], sample.text[:at] + noise + sample.text[at:]):
        fields, status = classify(sample.domain, text)
        assert status in ("ok", "not_found", "rate_limited", "no_data")
        _well_formed(fields)


def test_megabyte_of_garbage_is_no_data():
    """An answer cut at WHOIS_MAX_BYTES (1 MiB) of junk lines: its first MAX_READ (256 KiB) read in one
    pass, an answer status and well-formed fields."""
    line = "x" * 70 + ": " + "9" * 40 + " :: [[ ]] .... \t\t ns1.example.net 2001:db8::1 ||\n"
    text = line * (1024 * 1024 // len(line))
    fields, status = classify("example.net", text)
    assert status in ("no_data", "ok")
    _well_formed(fields)

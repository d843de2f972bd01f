"""Precertificate/certificate de-duplication (issue 18): the two certificates of one issuance, each in
several logs, are processed once (counted as certs_duplicate), by the TBS key certspotter uses; frames
without DER fall back to issuer + serial + names; memory is bounded."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from bench.workload import Issuer, fixture_certificates
from scout.config import Settings, load_settings
from scout.counters import Counters
from scout.producer.certdedup import NotACertificate, SeenCertificates, frame_key, tbs_key
from scout.producer.producer import Producer
from scout.producer.sinks import Sink
from scout.sources.ct.decode import leaf_cert_fields
from scout.store import MemoryStore
from tests.servers.ct_log import PRECERT_ENTRY, X509_ENTRY, LogItem, RFC6962Server, StaticCTServer, log_list
from tests.sources.test_ct import Harness, servers, write_list  # noqa: F401 (fixture)


class ListSink(Sink):
    def __init__(self) -> None:
        self.items: list[dict] = []

    def submit(self, items):
        self.items.extend(items)


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


def test_precert_and_cert_share_the_key_other_issuances_do_not(issuer):
    pre, cert = issuer.issue(["shop.example.com", "www.shop.example.com"])
    pre2, cert2 = issuer.issue(["shop.example.com", "www.shop.example.com"])   # same names, new issuance
    assert pre != cert and tbs_key(pre) == tbs_key(cert)
    assert tbs_key(pre2) == tbs_key(cert2) != tbs_key(pre)
    # what the key hashes is the TBS without the two CT extensions: a plain certificate keeps its TBS
    plain = x509.load_der_x509_certificate(issuer.ca_der)
    assert tbs_key(issuer.ca_der) == hashlib.sha256(plain.tbs_certificate_bytes).digest()
    with pytest.raises(NotACertificate):
        tbs_key(b"\x30\x03\x02\x01\x00")
    with pytest.raises(NotACertificate):
        tbs_key(b"")
    with pytest.raises(NotACertificate):
        tbs_key(pre[: len(pre) // 2])                        # truncated


def reference_key(der: bytes) -> bytes:
    """The same key through asn1crypto's Certificate model: drop the two extensions, re-encode."""
    tbs = asn1_x509.Certificate.load(der)["tbs_certificate"]
    exts = tbs["extensions"]
    keep = [e for e in exts if e["extn_id"].dotted not in ("1.3.6.1.4.1.11129.2.4.3", "1.3.6.1.4.1.11129.2.4.2")]
    if len(keep) != len(exts):
        tbs["extensions"] = asn1_x509.Extensions(keep)
    return hashlib.sha256(tbs.dump()).digest()


def test_fast_key_equals_the_asn1crypto_model(issuer):
    ders = [base64.b64decode(f["data"]["leaf_cert"]["as_der"]) for f in fixture_certificates()]
    for _ in range(5):
        ders += issuer.issue(["one.example.com", "two.example.com"])
    ders.append(issuer.ca_der)
    assert [tbs_key(d) for d in ders] == [reference_key(d) for d in ders]
    assert len({tbs_key(d) for d in ders}) < len(ders)      # the fixture's and the issuer's pairs collapse


def test_frame_key_from_der_or_issuer_serial_names(issuer):
    pre, cert = issuer.issue(["pay.example.org"])
    lp, lc = leaf_cert_fields(pre), leaf_cert_fields(cert)
    assert lp["sha256"] != lc["sha256"] and frame_key(lp) == frame_key(lc) == tbs_key(pre)
    lite_p = {k: v for k, v in lp.items() if k != "as_der"}
    lite_c = {k: v for k, v in lc.items() if k != "as_der"}
    assert frame_key(lite_p) == frame_key(lite_c) is not None and frame_key(lite_p) != frame_key(lp)
    other = dict(lite_c, serial_number="01")
    assert frame_key(other) != frame_key(lite_c)
    assert frame_key(dict(lp, as_der="!!not base64!!")) == frame_key(lite_p)    # bad DER: the fallback
    assert frame_key({}) is None and frame_key({"issuer": "x", "serial_number": 5}) is None
    keys = {frame_key(f["data"]["leaf_cert"]) for f in fixture_certificates()}
    assert None not in keys and len(keys) > 10


def test_window_is_bounded_and_remembers_recent_keys():
    seen = SeenCertificates(1000)
    keys = [i.to_bytes(8, "big") + b"x" * 24 for i in range(5000)]
    assert not any(seen.seen(k) for k in keys)
    assert len(seen) <= 1000
    assert all(seen.seen(k) for k in keys[-500:])          # the newest half-window is always remembered
    assert not seen.seen(keys[0])                           # the oldest are forgotten


def test_precert_and_cert_in_two_logs_yield_one_certificate(tmp_path, servers, issuer):
    pre, cert = issuer.issue(["login.example.net", "www.login.example.net"])
    _, other = issuer.issue(["blog.example.net"])
    chain = [issuer.ca_der]
    p_item, c_item, o_item = (LogItem(PRECERT_ENTRY, pre, chain), LogItem(X509_ENTRY, cert, chain),
                              LogItem(X509_ENTRY, other, chain))
    a = servers(RFC6962Server, [p_item, c_item])
    b = servers(StaticCTServer, [p_item, o_item, c_item])
    lst = write_list(tmp_path, log_list(rfc6962=[("A", "A log", a.url)], tiled=[("B", "B log", b.url)]))
    counters, sink = Counters(), ListSink()
    producer = Producer(dataclasses.replace(Settings(), cache_ttl=60.0), sink, MemoryStore(), counters)
    texts = []
    with Harness(lst) as h:
        frames = h.wait_for(5)
    for f in frames:
        texts.append(json.dumps(f))
        producer.handle_frame(texts[-1])
    producer.close()
    assert len(frames) == 5 and {f["data"]["update_type"] for f in frames} == {"PrecertLogEntry", "X509LogEntry"}
    assert counters.get("frames") == 5 and counters.get("certs_duplicate") == 3
    assert sorted(it["d"] for it in sink.items) == ["blog.example.net", "login.example.net"]
    login = next(it for it in sink.items if it["d"] == "login.example.net")
    first = json.loads(texts[0])["data"]
    assert login["c"]["sha256"] == first["leaf_cert"]["sha256"]   # the first copy seen is the one kept
    # with CT_DEDUP_KEYS=0 every copy goes on to the name de-duplication, as before
    counters2, sink2 = Counters(), ListSink()
    off = Producer(dataclasses.replace(Settings(), cache_ttl=60.0, ct_dedup_keys=0), sink2, MemoryStore(), counters2)
    for t in texts:
        off.handle_frame(t)
    off.close()
    assert counters.get("names") == 3 and counters2.get("names") == 4 * 2 + 1
    # www. is stripped: each copy is one name twice; the 3 later copies repeat both -> 1 + 3 * 2
    assert counters2.get("certs_duplicate") == 0 and counters2.get("duplicates") == 1 + 3 * 2


def test_setting_is_read_from_the_environment():
    assert load_settings({"CT_DEDUP_KEYS": "0"}, dotenv=None).ct_dedup_keys == 0
    assert load_settings({}, dotenv=None).ct_dedup_keys == 1_000_000


def test_the_same_der_again_is_known_by_its_fingerprint(issuer, monkeypatch):
    pre, cert = issuer.issue(["fp.example.com"])
    lp, lc = leaf_cert_fields(pre), leaf_cert_fields(cert)
    seen = SeenCertificates(100)
    keyed = []
    import scout.producer.certdedup as cd
    real = cd.frame_key
    monkeypatch.setattr(cd, "frame_key", lambda leaf: keyed.append(leaf["sha256"]) or real(leaf))
    results = [seen.duplicate(dict(leaf)) for leaf in (lp, lp, lc, lp, lc, lc)]
    assert results == [False, True, True, True, True, True]
    assert keyed == [lp["sha256"], lc["sha256"]]              # each DER keyed once
    # a frame without a usable fingerprint is still keyed by its DER
    assert seen.duplicate(dict(lc, sha256="not a fingerprint")) is True
    assert not SeenCertificates(100).duplicate({"sha256": lp["sha256"]})   # nothing else to key on: new

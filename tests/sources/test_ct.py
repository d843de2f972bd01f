"""SOURCE=ct: reading RFC 6962 and static-ct-api logs directly (scout.sources.ct), against local log servers."""
from __future__ import annotations

import base64
import datetime
import json
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scout.config import Settings
from scout.counters import Counters
from scout.sources.ct import decode, loglist, static
from scout.sources.ct.malformed import MalformedEntry
from scout.sources.ct.reader import CTSource, load_state
from tests.conftest import FIXTURE, wait_for
from tests.servers.ct_log import (PRECERT_ENTRY, X509_ENTRY, LogItem, RFC6962Server, StaticCTServer,
                                  extra_data, log_list, merkle_tree_leaf, tile_leaf)


FAST = dict(poll_interval=0.05, backoff_min=0.02, backoff_max=0.2, partial_tile_wait=0.0,
            state_save_interval=0.2, http_timeout=(2.0, 5.0))


# ---------------------------------------------------------------------------------------------- data

def fixture_updates() -> list[dict]:
    frames = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    return [f for f in frames if f["message_type"] == "certificate_update"]


def fixture_items() -> list[LogItem]:
    """The fixture's certificates re-encoded as log entries (precerts: the submitted precertificate)."""
    items = []
    for f in fixture_updates():
        d = f["data"]
        items.append(LogItem(PRECERT_ENTRY if d["update_type"] == "PrecertLogEntry" else X509_ENTRY,
                             base64.b64decode(d["leaf_cert"]["as_der"]),
                             [base64.b64decode(c["as_der"]) for c in d["chain"]],
                             timestamp=round(d["source"]["timestamp"] * 1000)))
    return items


class PKI:
    """A throwaway CA issuing certificates and precertificates, for entries the fixture does not have."""

    def __init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Scout Test CA"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "Scout Test CA 1")])
        now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(self.ca_key.public_key()).serial_number(1)
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(self.ca_key, hashes.SHA256()))
        self.ca_der = self.ca.public_bytes(serialization_der())
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.serial = 1000

    def issue(self, cn: str, sans: list[str], precert: bool = False) -> bytes:
        self.serial += 1
        now = datetime.datetime(2026, 10, 1, tzinfo=datetime.timezone.utc)
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]) if cn else x509.Name([]))
             .issuer_name(self.ca.subject).public_key(self.leaf_key.public_key()).serial_number(self.serial)
             .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=90))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False))
        if precert:
            b = b.add_extension(x509.PrecertPoison(), critical=True)
        return b.sign(self.ca_key, hashes.SHA256()).public_bytes(serialization_der())

    def item(self, cn: str, sans: list[str], precert: bool = False) -> LogItem:
        return LogItem(PRECERT_ENTRY if precert else X509_ENTRY, self.issue(cn, sans, precert), [self.ca_der])


def serialization_der():
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.DER


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI()


# ---------------------------------------------------------------------------------------------- helpers

def write_list(tmp_path: Path, doc: dict, name: str = "log_list.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


class Harness:
    """Runs a CTSource in a thread and collects its frames."""

    def __init__(self, list_source: str, state_file: str = "", ct_logs: str = "", start_at=0, **opts) -> None:
        self.frames: list[dict] = []
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.counters = Counters()
        settings = Settings(ct_log_list_url=list_source, ct_logs=ct_logs, ct_state_file=state_file)
        self.src = CTSource(settings, self._on_frame, self.stop, self.counters, start_at=start_at, **{**FAST, **opts})
        self.thread = threading.Thread(target=self.src.run, daemon=True)

    def _on_frame(self, frame: dict) -> None:
        with self.cond:
            self.frames.append(frame)
            self.cond.notify_all()

    def __enter__(self) -> "Harness":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()

    def wait_for(self, n: int, timeout: float = 60.0) -> list[dict]:
        """The frames once there are `n` (or all there are after a generous `timeout`)."""
        end = time.monotonic() + timeout
        with self.cond:
            while len(self.frames) < n and time.monotonic() < end:
                self.cond.wait(0.1)
            return list(self.frames)

    def wait_until(self, pred, timeout: float = 60.0):
        return wait_for(pred, timeout=timeout, interval=0.02)


def assert_matches_fixture(frames: list[dict], fixture: list[dict], base_index: int, log_type: str) -> None:
    for fr in frames:
        d = fr["data"]
        want = fixture[(d["cert_index"] - base_index) % len(fixture)]["data"]
        assert fr["message_type"] == "certificate_update"
        assert d["leaf_cert"] == want["leaf_cert"], d["cert_index"]
        assert d["chain"] == want["chain"]
        assert d["update_type"] == want["update_type"]
        assert d["source"]["timestamp"] == want["source"]["timestamp"]
        assert d["source"]["type"] == log_type
        assert list(d) == list(want)            # same keys in the same order as certstream-server-go
        assert list(d["leaf_cert"]) == list(want["leaf_cert"])


@pytest.fixture
def servers():
    made = []

    def make(cls, *args, **kw):
        s = cls(*args, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


# ---------------------------------------------------------------------------------------------- pure parts

def test_decoder_reproduces_every_fixture_leaf_cert_and_chain():
    for f in fixture_updates():
        lc = f["data"]["leaf_cert"]
        assert decode.leaf_cert_fields(base64.b64decode(lc["as_der"])) == lc
        for c in f["data"]["chain"]:
            assert decode.leaf_cert_fields(base64.b64decode(c["as_der"])) == c


def test_rfc6962_entry_round_trip_for_cert_and_precert(pki):
    source = decode.SourceInfo("Test 'Log'", "http://127.0.0.1:1/log", "rfc6962")
    for precert in (False, True):
        item = pki.item("www.example.test", ["example.test", "www.example.test"], precert=precert)
        frame = decode.decode_rfc6962(base64.b64encode(merkle_tree_leaf(item)).decode(),
                                      base64.b64encode(extra_data(item)).decode(), 7, source)
        d = frame["data"]
        assert d["update_type"] == ("PrecertLogEntry" if precert else "X509LogEntry")
        assert d["leaf_cert"]["all_domains"] == ["example.test", "www.example.test"]
        assert d["leaf_cert"]["as_der"] == base64.b64encode(item.cert_der).decode()
        assert d["leaf_cert"]["extensions"].get("ctlPoisonByte", False) is precert
        assert d["chain"][0]["is_ca"] is True and d["chain"][0]["all_domains"] == []
        assert d["cert_link"] == "http://127.0.0.1:1/log/ct/v1/get-entries?start=7&end=7"
        assert d["source"] == {"name": "Test 'Log'", "url": "http://127.0.0.1:1/log",
                               "timestamp": item.timestamp / 1000, "type": "rfc6962"}


def test_empty_subject_and_cn_rules(pki):
    no_cn = decode.leaf_cert_fields(pki.issue("", ["a.example.test"]))
    assert no_cn["subject"]["CN"] == "" and no_cn["subject"]["aggregated"] == "/CN="
    assert no_cn["all_domains"] == ["a.example.test"]
    extra_cn = decode.leaf_cert_fields(pki.issue("Other.Example.test", ["a.example.test"]))
    assert extra_cn["all_domains"] == ["a.example.test", "Other.Example.test"]


def test_fast_decoder_matches_reference_on_unusual_certificates():
    """leaf_cert_fields (DER walk) and reference_leaf_cert_fields (cryptography objects) must agree,
    including on inputs that send the fast path to its fallback."""
    import ipaddress
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
    from cryptography.x509.name import _ASN1Type

    ca_key = ec.generate_private_key(ec.SECP256R1())
    t0 = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
    rich_subject = x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Berlin")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.STREET_ADDRESS, "Example Str. 1")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org A"),
                                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org B")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "hostmaster@example.test")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "first.example.test")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "Last.Example.test")]),
    ])
    bmp_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bmp.example.test", _type=_ASN1Type.BMPString)])
    san = x509.SubjectAlternativeName([
        x509.DNSName("a.example.test"), x509.RFC822Name("admin@example.test"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.1")), x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
        x509.IPAddress(ipaddress.ip_address("::ffff:198.51.100.7")),
        x509.UniformResourceIdentifier("https://example.test/"), x509.DNSName("b.example.test")])
    key_usage = x509.KeyUsage(digital_signature=False, content_commitment=True, key_encipherment=False,
                              data_encipherment=True, key_agreement=True, key_cert_sign=False, crl_sign=False,
                              encipher_only=True, decipher_only=False)
    aki_no_keyid = x509.AuthorityKeyIdentifier(None, [x509.DirectoryName(x509.Name([]))], 77)
    policies = x509.CertificatePolicies([
        x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.2"), ["https://cps.example.test/"]),
        x509.PolicyInformation(x509.ObjectIdentifier("1.3.6.1.4.1.44947.1.1.1"), None)])
    aia_ocsp_only = x509.AuthorityInformationAccess([x509.AccessDescription(
        x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://ocsp.example.test"))])

    def build(subject, exts, key=ca_key, **sign_kw):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(rich_subject)
             .public_key(ec.generate_private_key(ec.SECP256R1()).public_key()).serial_number(0x0ABC)
             .not_valid_before(t0).not_valid_after(t0 + datetime.timedelta(days=30)))
        for ext, critical in exts:
            b = b.add_extension(ext, critical)
        algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        return b.sign(key, algorithm, **sign_kw).public_bytes(serialization_der())

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    ders = [
        build(rich_subject, [(san, False), (key_usage, True), (aki_no_keyid, False), (policies, False),
                             (aia_ocsp_only, False)]),
        build(rich_subject, [(x509.BasicConstraints(ca=True, path_length=1), True), (san, False)]),
        build(bmp_subject, [(san, False)]),                                   # fast path falls back
        build(x509.Name([]), [(x509.PrecertPoison(), True)]),
        build(rich_subject, [], key=rsa_key, rsa_padding=pss),
        build(rich_subject, [(san, False)], key=ed25519.Ed25519PrivateKey.generate()),
    ]
    for der in ders:
        assert decode.leaf_cert_fields(der) == decode.reference_leaf_cert_fields(der)
    rich = decode.leaf_cert_fields(ders[0])
    assert rich["subject"]["O"] == "Org A,Org B" and rich["subject"]["ST"] == "Example Str. 1"
    assert rich["subject"]["CN"] == "Last.Example.test"
    assert rich["subject"]["aggregated"] == "/C=DE/CN=Last.Example.test/O=Org A,Org B/OU=Unit/ST=Example Str. 1"
    assert rich["all_domains"] == ["a.example.test", "b.example.test", "Last.Example.test"]
    assert rich["extensions"]["subjectAltName"] == ("DNS:a.example.test, DNS:b.example.test, email:admin@example.test, "
                                                   "IP Address:192.0.2.1, IP Address:2001:db8::1, IP Address:198.51.100.7")
    assert rich["extensions"]["keyUsage"] == "Content Commitment, Data Encipherment, Key Agreement, Encipher Only"
    assert rich["extensions"]["authorityKeyIdentifier"] == "keyid:"
    assert rich["extensions"]["certificatePolicies"] == "Policy: 2.23.140.1.2.2\nPolicy: 1.3.6.1.4.1.44947.1.1.1\n"
    assert rich["extensions"]["authorityInfoAccess"] == "URI:http://ocsp.example.test"
    assert rich["serial_number"] == "0ABC" and rich["signature_algorithm"] == "ecdsa, sha256"
    ca = decode.leaf_cert_fields(ders[1])
    assert ca["is_ca"] and ca["all_domains"] == ["a.example.test", "b.example.test"]
    assert decode.leaf_cert_fields(ders[2])["all_domains"][-1] == "bmp.example.test"
    assert decode.leaf_cert_fields(ders[3])["extensions"] == {"ctlPoisonByte": True}
    assert decode.leaf_cert_fields(ders[4])["signature_algorithm"] == "sha256, rsa-pss"
    assert decode.leaf_cert_fields(ders[5])["signature_algorithm"] == "ed25519"


def test_malformed_rfc6962_entries_raise_malformed_entry(pki):
    item = pki.item("x.example.test", ["x.example.test"])
    leaf, extra = merkle_tree_leaf(item), extra_data(item)
    cases = [leaf[:-3], b"\x01" + leaf[1:], leaf[:10] + b"\x00\x07" + leaf[12:], leaf + b"\x00"]
    for bad in cases:
        with pytest.raises(MalformedEntry):
            decode.parse_rfc6962_entry(bad, extra)
    with pytest.raises(MalformedEntry):
        decode.parse_rfc6962_entry(leaf, extra[:5])
    garbage = LogItem(X509_ENTRY, b"\x30\x03\x02\x01\x00", [pki.ca_der])
    entry = decode.parse_rfc6962_entry(merkle_tree_leaf(garbage), extra_data(garbage))
    with pytest.raises(MalformedEntry):
        decode.build_frame(entry, 0, decode.SourceInfo("n", "u", "rfc6962"))
    with pytest.raises(MalformedEntry):
        decode.decode_rfc6962("not base64!", "", 0, decode.SourceInfo("n", "u", "rfc6962"))


def test_data_tile_parsing_truncation_and_leaf_index(pki):
    items = [pki.item(f"t{i}.example.test", [f"t{i}.example.test"], precert=i % 2 == 1) for i in range(4)]
    tile = b"".join(tile_leaf(it, 512 + i) for i, it in enumerate(items))
    entries, err = decode.parse_data_tile(tile, 4, 512)
    assert err is None and [e.leaf_index for e in entries] == [512, 513, 514, 515]
    assert [e.entry_type for e in entries] == [0, 1, 0, 1]
    assert entries[1].cert_der == items[1].cert_der and entries[1].tbs
    entries, err = decode.parse_data_tile(tile[: len(tile) - 10], 4, 512)
    assert len(entries) == 3 and err is not None and err.complete == 3
    entries, err = decode.parse_data_tile(tile, 4, 0)          # leaf_index disagrees with the position
    assert err is None and all(isinstance(e, MalformedEntry) for e in entries)
    _, err = decode.parse_data_tile(tile + b"\x00", 4, 512)
    assert err is not None


def test_tile_paths_and_checkpoint():
    assert static.tile_path(0) == "000"
    assert static.tile_path(67) == "067"
    assert static.tile_path(1000) == "x001/000"
    assert static.tile_path(1234067) == "x001/x234/067"
    assert static.data_tile_url("https://mon.example/log/", 1234067) == "https://mon.example/log/tile/data/x001/x234/067"
    assert static.data_tile_url("https://mon.example/log", 5, 17) == "https://mon.example/log/tile/data/005.p/17"
    root = base64.b64encode(b"\x01" * 32).decode()
    cp = static.parse_checkpoint(f"example.test/log\n1234\n{root}\n\n\u2014 example.test/log AAAA\n".encode())
    assert (cp.origin, cp.size, cp.root_hash) == ("example.test/log", 1234, b"\x01" * 32)
    for bad in (b"", b"origin\n12\n", f"o\nx12\n{root}\n\n\u2014 o A\n".encode(), "o\n12\nAAAA\n\n\u2014 o A\n".encode(),
                f"o\n12\n{root}\n".encode()):
        with pytest.raises(static.MalformedResponse):
            static.parse_checkpoint(bad)


def test_log_list_usable_selection_and_ct_logs_filter(tmp_path):
    doc = log_list(rfc6962=[("Google", "Google 'Argon2026h2' log", "https://ct.googleapis.com/logs/us1/argon2026h2/"),
                            ("Cloudflare", "Cloudflare 'Nimbus2026'", "https://ct.cloudflare.com/logs/nimbus2026/")],
                   tiled=[("Let's Encrypt", "Let's Encrypt 'Willow2026h2'", "https://mon.willow.ct.letsencrypt.org/2026h2/")])
    doc["operators"][0]["logs"].append({"description": "old", "url": "https://ct.googleapis.com/logs/old/",
                                        "state": {"retired": {"timestamp": "2025-01-01T00:00:00Z"}}})
    logs = loglist.parse_log_list(json.dumps(doc))
    assert len(logs) == 4
    chosen = loglist.select(logs)
    assert [(lg.type, lg.url) for lg in chosen] == [
        ("rfc6962", "https://ct.googleapis.com/logs/us1/argon2026h2"),
        ("rfc6962", "https://ct.cloudflare.com/logs/nimbus2026"),
        ("tiled", "https://mon.willow.ct.letsencrypt.org/2026h2")]
    assert [lg.operator for lg in loglist.select(logs, "let's encrypt")] == ["Let's Encrypt"]
    assert len(loglist.select(logs, " googleapis , NIMBUS ")) == 2
    assert loglist.select(logs, "nothing-matches") == []
    # file://, a plain path, and the bundled snapshot when the source cannot be read
    path = write_list(tmp_path, doc)
    assert len(loglist.load("file://" + path)[0]) == 4 and len(loglist.load(path)[0]) == 4
    bundled, origin = loglist.load(str(tmp_path / "missing.json"))
    assert origin == str(loglist.BUNDLED_LOG_LIST)
    kinds = {lg.type for lg in loglist.select(bundled)}
    assert kinds == {"rfc6962", "tiled"}


def test_bundled_snapshot_used_when_url_unreachable():
    logs, origin = loglist.load("http://127.0.0.1:9/log_list.json")   # discard port: connection refused
    assert origin == str(loglist.BUNDLED_LOG_LIST) and loglist.select(logs)


# ---------------------------------------------------------------------------------------------- end to end

def test_rfc6962_log_reproduces_fixture_frames(tmp_path, servers):
    fixture = fixture_updates()
    srv = servers(RFC6962Server, fixture_items(), max_batch=7)
    lst = write_list(tmp_path, log_list(rfc6962=[("Example", "Example 'Local' log", srv.url)]))
    with Harness(lst) as h:
        frames = h.wait_for(len(fixture))
    assert [f["data"]["cert_index"] for f in frames] == list(range(len(fixture)))
    assert_matches_fixture(frames, fixture, 0, "rfc6962")
    assert frames[3]["data"]["source"]["name"] == "Example 'Local' log"
    assert frames[3]["data"]["source"]["url"] == srv.url.rstrip("/")
    assert frames[3]["data"]["cert_link"] == f"{srv.url}ct/v1/get-entries?start=3&end=3"
    assert h.counters.get("ct_entries") == len(fixture) and h.counters.get("ct_malformed") == 0


@pytest.mark.parametrize("gzip_mode", ["header", "raw"])
def test_static_log_reproduces_fixture_frames_over_full_and_partial_tiles(tmp_path, servers, gzip_mode):
    fixture = fixture_updates()
    items = fixture_items()
    srv = servers(StaticCTServer, [items[i % len(items)] for i in range(256 + 30)], gzip_mode=gzip_mode)
    lst = write_list(tmp_path, log_list(tiled=[("Example", "Example 'Tiles' log", srv.url)]))
    with Harness(lst) as h:
        frames = h.wait_for(286)
    assert [f["data"]["cert_index"] for f in frames] == list(range(286))
    assert_matches_fixture(frames, fixture, 0, "tiled")
    assert all(f["data"]["cert_link"] == "" for f in frames)
    assert "/tiled/tile/data/000" in srv.requests and "/tiled/tile/data/001.p/30" in srv.requests
    issuer_fetches = [p for p in srv.requests if "/issuer/" in p]
    assert len(issuer_fetches) == len(set(issuer_fetches))      # issuers are cached


def test_429_then_recovery(tmp_path, servers, pki):
    srv = servers(RFC6962Server, [pki.item(f"r{i}.example.test", [f"r{i}.example.test"]) for i in range(40)], max_batch=10)
    srv.fail("/ct/v1/get-entries", [429, 429, 503, 429])
    tiled = servers(StaticCTServer, [pki.item(f"s{i}.example.test", [f"s{i}.example.test"]) for i in range(20)])
    tiled.fail("/checkpoint", [429, 500])
    lst = write_list(tmp_path, log_list(rfc6962=[("A", "A log", srv.url)], tiled=[("B", "B log", tiled.url)]))
    with Harness(lst) as h:
        frames = h.wait_for(60)
    got = sorted((f["data"]["source"]["type"], f["data"]["cert_index"]) for f in frames)
    assert got == [("rfc6962", i) for i in range(40)] + [("tiled", i) for i in range(20)]
    assert h.counters.get("ct_http_429") == 4 and h.counters.get("ct_http_errors") == 6
    assert h.counters.get("ct_http_503") == 1 and h.counters.get("ct_http_500") == 1


def test_truncated_tile_is_fetched_again_without_gaps_or_duplicates(tmp_path, servers, pki):
    items = [pki.item(f"tt{i}.example.test", [f"tt{i}.example.test"], precert=i % 3 == 0) for i in range(300)]
    srv = servers(StaticCTServer, items)
    srv.truncate_once.add(0)
    lst = write_list(tmp_path, log_list(tiled=[("T", "T log", srv.url)]))
    with Harness(lst) as h:
        frames = h.wait_for(300)
    assert [f["data"]["cert_index"] for f in frames] == list(range(300))
    assert [f["data"]["leaf_cert"]["all_domains"][0] for f in frames] == [f"tt{i}.example.test" for i in range(300)]
    assert h.counters.get("ct_malformed_tiles") == 1 and h.counters.get("ct_malformed") == 0
    assert srv.requests.count("/tiled/tile/data/000") == 2


def test_malformed_entries_are_counted_and_skipped(tmp_path, servers, pki):
    good = [pki.item(f"m{i}.example.test", [f"m{i}.example.test"]) for i in range(10)]
    garbage_der = LogItem(X509_ENTRY, b"\x30\x03\x02\x01\x00", [pki.ca_der])
    bad_framing = LogItem(X509_ENTRY, good[0].cert_der, [pki.ca_der], leaf_override=b"\x00\x00\x00")
    rfc_items = good[:3] + [garbage_der] + good[3:6] + [bad_framing] + good[6:]
    srv = servers(RFC6962Server, rfc_items, max_batch=4)
    tiled_items = good[:5] + [garbage_der] + good[5:]
    tsrv = servers(StaticCTServer, tiled_items)
    lst = write_list(tmp_path, log_list(rfc6962=[("R", "R log", srv.url)], tiled=[("S", "S log", tsrv.url)]))
    with Harness(lst) as h:
        frames = h.wait_for(20)
        assert h.wait_until(lambda: all(s["next_index"] == 12 if s["type"] == "rfc6962" else s["next_index"] == 11
                                        for s in h.src.status()))
    rfc = [f["data"]["cert_index"] for f in frames if f["data"]["source"]["type"] == "rfc6962"]
    tiled = [f["data"]["cert_index"] for f in frames if f["data"]["source"]["type"] == "tiled"]
    assert rfc == [0, 1, 2, 4, 5, 6, 8, 9, 10, 11]
    assert tiled == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert h.counters.get("ct_malformed") == 3 and h.counters.get("ct_entries") == 20


def test_follows_from_tip_and_resumes_from_state_file(tmp_path, servers, pki):
    items = [pki.item(f"old{i}.example.test", [f"old{i}.example.test"]) for i in range(5)]
    srv = servers(RFC6962Server, items)
    tsrv = servers(StaticCTServer, items[:3])
    lst = write_list(tmp_path, log_list(rfc6962=[("R", "R log", srv.url)], tiled=[("S", "S log", tsrv.url)]))
    state = str(tmp_path / "state" / "ct.json")
    with Harness(lst, state_file=state, start_at=None) as h:   # no state yet: start at the tip
        assert h.wait_until(lambda: all(s["next_index"] is not None for s in h.src.status()) and len(h.src.status()) == 2)
        srv.append([pki.item("new0.example.test", ["new0.example.test"])])
        tsrv.append([pki.item("tnew0.example.test", ["tnew0.example.test"])])
        frames = h.wait_for(2)
    assert sorted(f["data"]["leaf_cert"]["all_domains"][0] for f in frames) == ["new0.example.test", "tnew0.example.test"]
    saved = load_state(state)
    assert sorted(saved.values()) == [4, 6]
    # Logged while we were down: a restart picks these up instead of skipping to the new tip.
    srv.append([pki.item(f"down{i}.example.test", [f"down{i}.example.test"]) for i in range(3)])
    tsrv.append([pki.item("tdown.example.test", ["tdown.example.test"])])
    with Harness(lst, state_file=state, start_at=None) as h2:
        frames = h2.wait_for(4)
    assert sorted(f["data"]["cert_index"] for f in frames if f["data"]["source"]["type"] == "rfc6962") == [6, 7, 8]
    assert [f["data"]["cert_index"] for f in frames if f["data"]["source"]["type"] == "tiled"] == [4]
    assert sorted(load_state(state).values()) == [5, 9]
    assert not list((tmp_path / "state").glob("*.tmp"))


def test_log_list_refresh_adds_and_drops_logs_and_applies_filter(tmp_path, servers, pki):
    a = servers(RFC6962Server, [pki.item("a.example.test", ["a.example.test"])])
    b = servers(RFC6962Server, [pki.item("b.example.test", ["b.example.test"])], path="/other")
    c = servers(StaticCTServer, [pki.item("c.example.test", ["c.example.test"])])
    host = servers(RFC6962Server, [])
    first = log_list(rfc6962=[("Alpha", "A log", a.url), ("Skipped Operator", "Skip log", b.url)],
                     tiled=[("Alpha", "C log", c.url)])
    host.files["/log_list.json"] = (json.dumps(first).encode(), "application/json")
    with Harness(host.origin + "/log_list.json", ct_logs="alpha", refresh_interval=0.2) as h:
        h.wait_for(2)
        assert sorted(lg.name for lg in h.src.active_logs()) == ["A log", "C log"]
        second = log_list(rfc6962=[("Alpha", "A log", a.url)], tiled=[("Alpha", "C log", c.url)], state="retired")
        second["operators"][0]["logs"][0]["state"] = {"usable": {"timestamp": "2026-01-01T00:00:00Z"}}
        host.files["/log_list.json"] = (json.dumps(second).encode(), "application/json")
        assert h.wait_until(lambda: [lg.name for lg in h.src.active_logs()] == ["A log"])
        assert h.counters.get("ct_logs_dropped") == 1
        host.files.pop("/log_list.json")           # list unavailable: keep following what we have
        time.sleep(0.5)
        assert [lg.name for lg in h.src.active_logs()] == ["A log"]
        assert h.counters.get("ct_log_list_errors") >= 1
    assert sorted(f["data"]["leaf_cert"]["all_domains"][0] for f in h.frames) == ["a.example.test", "c.example.test"]


def test_bounded_buffer_applies_backpressure_and_stop_is_prompt(tmp_path, servers, pki):
    srv = servers(RFC6962Server, [pki.item(f"b{i}.example.test", [f"b{i}.example.test"]) for i in range(200)], max_batch=50)
    lst = write_list(tmp_path, log_list(rfc6962=[("B", "B log", srv.url)]))
    release = threading.Event()
    seen = []
    stop = threading.Event()

    def slow(frame):
        seen.append(frame)
        release.wait(5)

    src = CTSource(Settings(ct_log_list_url=lst), slow, stop, Counters(), start_at=0, buffer_size=5, **FAST)
    t = threading.Thread(target=src.run, daemon=True)
    t.start()
    assert wait_for(lambda: src.frames.full(), interval=0.02)
    time.sleep(0.2)
    assert src.frames.qsize() <= 5 and len(seen) == 1          # the worker waits instead of piling up
    stop.set()
    release.set()
    t.join(60)        # a reader blocked on its full buffer would never end: the log has 195 entries to go
    assert not t.is_alive()

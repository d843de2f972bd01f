"""Issue 6, hostile input (hypothesis): certstream frames into the real Producer, answers of a hostile DNS
server into the real DNS stage, and names into the file layout of the save stage.

Thousands of cases, a few tens of seconds. No service needed except loopback sockets.
"""
from __future__ import annotations

import ipaddress
import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from scout.stages import document as output
from scout.config import load_settings
from scout.counters import Counters
from scout.producer.sinks import Sink
from scout.names import normalise_domain, root_domain
from scout.producer.producer import Producer
from scout.store import MemoryStore
from tests.support.reliability import HostileDNS

def fast(n: int):
    """`n` derandomised examples (reproducible in CI), no deadline (a loaded CI machine is slow)."""
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                    database=None)

# ------------------------------------------------------------------ an independent hostname validator

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def strict_hostname(name) -> bool:
    """RFC 1123 host name in lower-case ASCII (underscore allowed, as in `_dmarc`), at least two labels,
    at most 253 characters, no IPv4 address. (An `xn--` label that is not valid punycode is still a
    valid host name: DNS does not decode it.)"""
    if not isinstance(name, str) or not name.isascii() or not 3 <= len(name) <= 253:
        return False
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    if len(labels) == 4 and all(label.isdigit() for label in labels):
        return False
    try:
        ipaddress.ip_address(name)
        return False
    except ValueError:
        pass
    return True


class ListSink(Sink):
    """Collects what the producer would enqueue."""

    def __init__(self):
        self.items: list[dict] = []

    def submit(self, items):
        self.items.extend(items)

    def backlogged(self):
        return False


def make_producer():
    s = load_settings({"BATCH_LINGER": "1ms"}, None)
    sink = ListSink()
    return Producer(s, sink, MemoryStore(), Counters()), sink


def check_accepted(sink: ListSink) -> None:
    for it in sink.items:
        assert strict_hostname(it["d"]), it["d"]
        assert strict_hostname(it["r"]) or "." not in it["r"], it["r"]
        assert it["d"] == it["r"] or it["d"].endswith("." + it["r"])
        json.dumps(it)   # travels as JSON through the broker


# ------------------------------------------------------------------ frames

HOSTILE_NAMES = st.sampled_from([
    "../../etc/passwd", "..", ".", "a/b.example", "a\\b.example", "nul\x00.example", "ctl\x01\x7f.example",
    "\u202eevil.example", "аpple.com", "ｅｘａｍｐｌｅ.com", "paypal\u200b.com", "ex\u0301ample.com",
    "*.*.example", "-lead.example", "trail-.example", "a..b.example", "xn--.example", "xn--zz.example",
    "1.2.3.4", "010.1.1.1", "::1", "[::1]", "example.com:443", "%2e%2e.example", "CON.example",
    "a" * 64 + ".example", ("a" * 63 + ".") * 4 + "example", " padded.example ", "*.", "www.", "_x._y.example",
    "\udcff.example", "\ufffd.example", "ß.example", "İ.example", "\u0130stanbul.example",
])
NAME = st.one_of(HOSTILE_NAMES, st.text(max_size=80),
                 st.text(alphabet=st.sampled_from("abcxyz019-_.*/\\\x00 ÄßİК\u200b"), max_size=40),
                 st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){1,4}", fullmatch=True))
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
JSON_ANY = st.recursive(JSON_SCALAR, lambda kids: st.one_of(st.lists(kids, max_size=5),
                                                             st.dictionaries(st.text(max_size=10), kids, max_size=5)),
                        max_leaves=20)
WRONG = st.one_of(JSON_ANY, NAME, st.lists(NAME, max_size=5))


@st.composite
def frames(draw):
    kind = draw(st.sampled_from(["cert", "dns", "random", "heartbeat", "raw"]))
    if kind == "raw":
        return draw(st.one_of(st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
                              st.text(max_size=200), st.sampled_from(["[" * 5000, "{" * 5000, '"\\ud800"',
                                                                      "1e999999", "-", "null"])))
    if kind == "random":
        return json.dumps(draw(JSON_ANY))
    if kind == "heartbeat":
        return json.dumps({"message_type": "heartbeat", "timestamp": draw(WRONG)})
    names = draw(st.one_of(st.lists(st.one_of(NAME, JSON_SCALAR), max_size=12), WRONG))
    if kind == "dns":
        return json.dumps({"message_type": "dns_entries", "data": names})
    leaf = {"all_domains": names, "sha256": draw(WRONG), "not_before": draw(WRONG), "not_after": draw(WRONG),
            "issuer": draw(st.one_of(WRONG, st.fixed_dictionaries({"aggregated": WRONG, "CN": WRONG})))}
    data = {"leaf_cert": draw(st.one_of(st.just(leaf), WRONG)), "cert_index": draw(WRONG),
            "update_type": draw(WRONG), "source": draw(st.one_of(WRONG, st.fixed_dictionaries(
                {"name": WRONG, "url": WRONG})))}
    return json.dumps({"message_type": "certificate_update", "data": draw(st.one_of(st.just(data), WRONG))},
                      ensure_ascii=draw(st.booleans()))


GOOD_NAME = st.from_regex(r"s[a-z0-9]{0,15}\.good-[a-z0-9]{1,10}\.example", fullmatch=True)


@pytest.mark.slow
@fast(600)
@given(st.lists(frames(), min_size=1, max_size=4), GOOD_NAME, st.integers(0, 4))
def test_producer_survives_any_frame_and_accepts_only_hostnames(batch, good, at):
    # One plain frame with a good name among the hostile ones: the property cannot hold over an empty
    # sink (a producer that dropped everything would pass the checks below without it).
    batch = batch[:at] + [json.dumps({"message_type": "dns_entries", "data": [good]})] + batch[at:]
    producer, sink = make_producer()
    for text in batch:
        producer.handle_frame(text)
    producer.close()
    check_accepted(sink)
    accepted = [it["d"] for it in sink.items]
    assert good in accepted, (good, accepted)
    c = producer.counters.snapshot()
    assert c["frames"] == len(batch)
    assert c["unique"] == len(accepted) == len(set(accepted))       # each new name sent once
    # Every name is accounted for: accepted (new or duplicate) or skipped with a reason.
    skipped = sum(v for k, v in c.items() if k.startswith("names_skipped_") and k != "names_skipped_too_many")
    assert c.get("names", 0) == skipped + c.get("unique", 0) + c.get("duplicates", 0)


@pytest.mark.slow
@fast(1500)
@given(NAME)
def test_normalise_accepts_only_strict_hostnames(raw):
    name, reason = normalise_domain(raw)
    assert (name is None) != (reason is None)
    if name is not None:
        assert strict_hostname(name), (raw, name)
        assert normalise_domain(name) == (name, None)   # idempotent


@pytest.mark.slow
def test_producer_survives_the_big_ones():
    """10 MB strings, deep nesting, huge arrays, invalid UTF-8 as bytes: counted, never fatal."""
    producer, sink = make_producer()
    big = "x" * (10 * 1024 * 1024)
    cases = [
        json.dumps({"message_type": "dns_entries", "data": [big, "ok-one.example"]}),
        json.dumps({"message_type": "certificate_update", "data": {"leaf_cert": {"all_domains": [big + ".example"],
                                                                                 "sha256": big}}}),
        '{"message_type":"dns_entries","data":' + "[" * 200000 + "]" * 200000 + "}",
        json.dumps({"message_type": "dns_entries", "data": [f"h{i}.huge.example" for i in range(200000)]}),
        json.dumps({"message_type": "dns_entries", "data": [[[[[]]]]] * 100000}),
        b'{"message_type":"dns_entries","data":["\xff\xfe.example","ok-two.example"]}',
        b"\xff" * 1000,
    ]
    started = time.monotonic()
    for text in cases:
        producer.handle_frame(text)
    producer.close()
    assert time.monotonic() - started < 30
    check_accepted(sink)
    names = {it["d"] for it in sink.items}
    assert "ok-one.example" in names and "h9999.huge.example" in names
    assert "h10000.huge.example" not in names          # a frame carries at most 10,000 names
    c = producer.counters.snapshot()
    assert c["names_skipped_too_many"] == 190000 + 90000 and c["frames_bad_json"] >= 2


# ------------------------------------------------------------------ file names

HOSTISH = st.one_of(HOSTILE_NAMES, st.from_regex(r"[*.]{0,2}[a-zA-Z0-9_.\\/\x00-]{1,300}", fullmatch=True),
                    st.lists(st.text(alphabet=st.sampled_from("ab9_-.Ä"), min_size=1, max_size=70),
                             min_size=2, max_size=6).map(".".join))


@pytest.mark.slow
@fast(1500)
@given(HOSTISH)
def test_no_name_can_write_outside_output_dir(tmp_path_factory, raw):
    base = tmp_path_factory.getbasetemp() / "out"
    name, _ = normalise_domain(raw)
    if name is None:
        return
    path = output.document_path(base, root_domain(name), name)
    assert path.parent.parent == base.resolve()
    assert path.name.endswith(".json") and not path.name.startswith(".")
    assert len(path.name) <= 255 and len(path.parent.name) <= 255
    assert ".." not in path.relative_to(base.resolve()).parts


@fast(200)
@given(st.lists(HOSTISH, min_size=2, max_size=40))
def test_distinct_domains_get_distinct_files(tmp_path_factory, raws):
    base = tmp_path_factory.getbasetemp() / "out"
    paths: dict = {}
    for raw in raws:
        name, _ = normalise_domain(raw)
        if name is None:
            continue
        p = output.document_path(base, root_domain(name), name)
        assert paths.setdefault(p, name) == name, f"{name} and {paths[p]} share {p}"


def test_distinct_long_and_lookalike_names_get_distinct_files(tmp_path):
    long_a = ("a" * 63 + ".") * 3 + "b" * 52 + ".example"      # 252 characters: hashed file names
    long_b = ("a" * 63 + ".") * 3 + "c" * 52 + ".example"
    names = [long_a, long_b, "_h_" + "0" * 60 + ".example", "x.example", "x.example.example", "www-x.example"]
    assert all(normalise_domain(n) == (n, None) for n in names)
    paths = [output.document_path(tmp_path, root_domain(n), n) for n in names]
    assert paths[0].name.startswith("_h_") and paths[1].name.startswith("_h_")
    assert len(set(paths)) == len(names)


# ------------------------------------------------------------------ a hostile DNS server

@pytest.fixture(scope="module")
def hostile_dns():
    server = HostileDNS().start()
    yield server
    server.stop()


ALLOWED = {"NOERROR", "NODATA", "NXDOMAIN", "SERVFAIL", "REFUSED", "NOTIMP", "FORMERR", "TIMEOUT",
           "UNREACHABLE", "BADNAME", "YXDOMAIN", "NOTAUTH", "NOTZONE", "NXRRSET", "YXRRSET", "BADVERS"}


def check_records(rec: dict) -> None:
    assert set(rec["dns_status"]) == {"A", "AAAA", "MX", "TXT", "CAA", "SOA"}
    assert set(rec["dns_status"].values()) <= ALLOWED, rec["dns_status"]
    for key in ("a_records", "aaaa_records", "mx_records", "txt_records", "caa_records", "cname_chain"):
        assert isinstance(rec[key], list) and all(isinstance(x, str) for x in rec[key])
    assert isinstance(rec["soa_record"], str)
    json.dumps(rec)


def test_hostile_dns_answers_give_clear_statuses_within_the_timeout(hostile_dns):
    from scout.stages.dns import resolve_batch

    # A timeout long enough for a loaded machine to finish the answering modes (TC, then TCP) in time:
    # a 500 ms one turned a truncation into TIMEOUT under load.
    s = load_settings({"DNS_SERVER": f"127.0.0.1:{hostile_dns.port}", "DNS_TIMEOUT": "5s",
                       "DNS_RETRIES": "1"}, None)
    modes = ["fine", "silent", "wrongid", "garbage", "short", "trunc", "tcpgarbage", "hugetxt", "cnameloop",
             "othername", "badrcode"]
    started = time.monotonic()
    got = dict(zip(modes, resolve_batch([f"{m}.hostile.example" for m in modes], s)))
    # Queries run in parallel: the silent server costs two 5 s attempts; one after the other, 11 names x
    # 6 types would take minutes (a generous bound on a loaded machine, still far below that).
    assert time.monotonic() - started < 60
    for rec in got.values():
        check_records(rec)
    assert got["fine"]["a_records"] == ["192.0.2.7"] and not got["fine"]["transient"]
    assert got["silent"]["transient"] and set(got["silent"]["dns_status"].values()) == {"TIMEOUT"}
    for mode in ("short", "trunc", "badrcode"):
        assert set(got[mode]["dns_status"].values()) == {"FORMERR"}, (mode, got[mode]["dns_status"])
        assert not got[mode]["transient"]                  # a server answered: not retried for ever
    # An answer with another ID (spoofing) and garbage over TCP: refused as malformed, or ignored and
    # waited for until the timeout.
    for mode in ("wrongid", "tcpgarbage"):
        assert set(got[mode]["dns_status"].values()) <= {"FORMERR", "TIMEOUT"}, got[mode]["dns_status"]
    assert len(got["hugetxt"]["txt_records"][0]) == 240 * 250  # truncated over UDP, whole over TCP
    assert got["cnameloop"]["a_records"] == [] and got["cnameloop"]["cname_chain"] == ["cnameloop.hostile.example"]
    assert got["othername"]["a_records"] == []            # records for another name are not taken


@pytest.mark.slow
@fast(300)
@given(st.data())
def test_fuzzed_dns_answers_never_raise(hostile_dns, data):
    """Valid answers with random bytes flipped, cut or appended: the stage returns a status, never raises."""
    import dns.message
    import dns.rrset

    from scout.stages.dns import resolve_batch

    q = dns.message.make_query("fuzz.hostile.example", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("fuzz.hostile.example.", 60, "IN", "CNAME", "fuzz.hostile.example."))
    r.answer.append(dns.rrset.from_text("fuzz.hostile.example.", 60, "IN", "TXT", '"a" "b"'))
    r.authority.append(dns.rrset.from_text("example.", 60, "IN", "SOA", "a. b. 1 2 3 4 5"))
    wire = bytearray(r.to_wire())
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(2, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(3, len(wire)))
    hostile_dns.payload = bytes(wire[:cut]) + data.draw(st.binary(max_size=20))
    s = load_settings({"DNS_SERVER": f"127.0.0.1:{hostile_dns.port}", "DNS_TIMEOUT": "150ms",
                       "DNS_RETRIES": "0"}, None)
    started = time.monotonic()
    [rec] = resolve_batch(["fuzz.hostile.example"], s)
    assert time.monotonic() - started < 10                 # the 150 ms timeout holds (generous: loaded machine)
    check_records(rec)

"""The websocket feed, the replay server and the recorder, over real sockets on loopback."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FIXTURE, ROOT, wait_for
from scout.counters import Counters
from scout.sources.feed import WebSocketFeed
from scout.sources.recording import read_recording
from scout.sources.replay import (ReplayServer, derive_frame, endpoint_for_path, load_frames, to_domains_only,
                          to_lite)

PATHS = {"full": "/full-stream", "lite": "/", "domains": "/domains-only"}

pytestmark = pytest.mark.timeout(60)


def fixture_lines() -> list[bytes]:
    return load_frames(FIXTURE)


def collect(q: queue.Queue, n: int, timeout: float = 5.0) -> list[str]:
    out, end = [], time.monotonic() + timeout
    while len(out) < n:
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            out.append(q.get(timeout=left))
        except queue.Empty:
            break
    return out


@contextlib.contextmanager
def running_feed(url: str, maxsize: int = 0, **kw):
    kw.setdefault("backoff_min", 0.1)
    kw.setdefault("backoff_max", 0.5)
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    counters = Counters()
    feed = WebSocketFeed(url, q, counters, threading.Event(), **kw)
    t = threading.Thread(target=feed.run, daemon=True)
    t.start()
    try:
        yield feed, q, counters
    finally:
        feed.stop()
        t.join(5)
        assert not t.is_alive(), "feed did not stop"


@pytest.fixture
def server():
    servers = []

    def make(*args, **kw):
        s = ReplayServer(*args, **kw).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


# -- pure derivation --------------------------------------------------------------------------------------

def test_to_lite_and_domains_only_are_pure_and_right():
    frames = [json.loads(line) for line in fixture_lines()]
    certs = [f for f in frames if f["message_type"] == "certificate_update"]
    assert len(certs) == 40
    for full in certs:
        before = json.dumps(full)
        lite = to_lite(full)
        assert json.dumps(full) == before, "to_lite must not change its input"
        assert "chain" not in lite["data"] and "as_der" not in lite["data"]["leaf_cert"]
        assert list(lite["data"]) == [k for k in full["data"] if k != "chain"]
        assert {k: v for k, v in full["data"]["leaf_cert"].items() if k != "as_der"} == lite["data"]["leaf_cert"]
        assert lite["data"]["source"] == full["data"]["source"]
        dom = to_domains_only(full)
        assert dom == {"data": full["data"]["leaf_cert"]["all_domains"], "message_type": "dns_entries"}
        assert list(dom) == ["data", "message_type"]
    assert any(to_domains_only(f)["data"] == [] for f in certs)  # the empty-subject cert
    hb = {"message_type": "heartbeat", "timestamp": 1.5}
    dns = {"data": ["a.example"], "message_type": "dns_entries"}
    assert to_lite(hb) is hb and to_domains_only(hb) is None and to_domains_only(dns) is dns
    assert to_domains_only({"message_type": "certificate_update", "data": None}) == \
        {"data": [], "message_type": "dns_entries"}
    # raw, heartbeat and dns_entries routing
    assert derive_frame(b"not json", "lite") == b"not json"
    assert derive_frame(b"[1,2]", "domains") == b"[1,2]"
    assert derive_frame(json.dumps(hb), "full") == json.dumps(hb).encode()
    assert derive_frame(json.dumps(dns), "full") is None and derive_frame(json.dumps(dns), "domains") is not None


def test_endpoint_for_path():
    assert endpoint_for_path("/") == "lite" and endpoint_for_path("") == "lite"
    assert endpoint_for_path("/full-stream") == endpoint_for_path("/full-stream/") == "full"
    assert endpoint_for_path("/domains-only/?x=1") == "domains"
    assert endpoint_for_path("/nope") is None and endpoint_for_path("/full-stream/example.json") is None


def test_read_recording(tmp_path):
    p = tmp_path / "rec.jsonl"
    p.write_bytes(b'{"a":1}\r\n\n   \n{"b":"\xff\xfe"}\n{"c":tru')
    assert list(read_recording(p)) == ['{"a":1}', '{"b":"\ufffd\ufffd"}', '{"c":tru']
    g = tmp_path / "rec.jsonl.gz"
    g.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    assert list(read_recording(g)) == list(read_recording(FIXTURE))
    assert len(list(read_recording(FIXTURE))) == 59


# -- feed against the replay server -----------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["full", "lite", "domains"])
def test_feed_receives_every_frame_in_order(server, endpoint):
    srv = server(FIXTURE)
    expected = [f.decode() for f in (derive_frame(line, endpoint) for line in fixture_lines()) if f is not None]
    assert len(expected) == {"full": 44, "lite": 44, "domains": 59}[endpoint]
    path = PATHS[endpoint] + ("/" if endpoint != "lite" else "")   # trailing-slash variants too
    connects = []
    with running_feed(srv.url(path), on_connect=lambda: connects.append(1)) as (feed, q, c):
        got = collect(q, len(expected))
        assert got == expected
        assert q.empty() or collect(q, 1, 0.3) == []
    assert connects == [1]
    assert c.get("frames_received") == len(expected) and c.get("bytes") == sum(len(e.encode()) for e in expected)
    parsed = [json.loads(g) for g in got]
    kinds = [p["message_type"] for p in parsed]
    assert kinds.count("heartbeat") == 4
    if endpoint == "lite":
        for p in parsed:
            if p["message_type"] == "certificate_update":
                assert "chain" not in p["data"] and "as_der" not in p["data"]["leaf_cert"]
                assert "all_domains" in p["data"]["leaf_cert"]
    elif endpoint == "domains":
        assert set(kinds) == {"dns_entries", "heartbeat"}
        assert sum(1 for p in parsed if p.get("data") == []) == 2  # one derived, one recorded
    else:
        assert all("chain" in p["data"] for p in parsed if p["message_type"] == "certificate_update")


def test_example_json_over_http(server):
    srv = server(FIXTURE)
    base = f"http://127.0.0.1:{srv.port}"
    full = json.loads(urllib.request.urlopen(base + "/full-stream/example.json", timeout=5).read())
    lite = json.loads(urllib.request.urlopen(base + "/example.json", timeout=5).read())
    dom = json.loads(urllib.request.urlopen(base + "/domains-only/example.json", timeout=5).read())
    assert full["message_type"] == "certificate_update" and "chain" in full["data"]
    assert lite == to_lite(full) and dom == to_domains_only(full)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(base + "/nothing-here", timeout=5)
    assert err.value.code == 404
    err.value.close()


def test_reconnects_after_server_restart_on_same_port(server):
    srv = server(FIXTURE, rate=100, loop=True)
    port = srv.port
    with running_feed(srv.url("/domains-only"), ping_interval=0.5, ping_timeout=1.0) as (feed, q, c):
        assert wait_for(lambda: c.get("frames_received") >= 20)
        srv.stop()                       # clean close (1001)
        assert wait_for(lambda: not feed.connected.is_set())
        assert wait_for(lambda: c.get("connect_errors") >= 1, interval=0.02)   # refused while it is down
        srv.start()
        assert srv.port == port
        n = c.get("frames_received")
        assert wait_for(lambda: c.get("frames_received") >= n + 20), c.snapshot()
        assert c.get("reconnects") == 1 and c.get("connect_errors") >= 1
        srv.stop(abort=True)             # now a crash: no close frame
        srv.start()
        n = c.get("frames_received")
        assert wait_for(lambda: c.get("frames_received") >= n + 20), c.snapshot()
        assert c.get("reconnects") == 2 and c.get("disconnects") == 2
    # every connection starts from the top of the recording
    assert srv.connections == 3


def test_slow_consumer_never_blocks_the_reader(server):
    srv = server(FIXTURE, loop=True)
    with running_feed(srv.url("/domains-only"), maxsize=10, ping_interval=0.5, ping_timeout=2.0) as (feed, q, c):
        assert wait_for(lambda: c.get("frames_dropped_buffer") >= 2000, interval=0.02)
        time.sleep(1.2)                  # several ping rounds while the queue stays full
        assert feed.connected.is_set() and c.get("disconnects") == 0
        assert q.qsize() == 10
        assert c.get("frames_received") - c.get("frames_dropped_buffer") == 10


def test_pings_keep_the_client_connected_where_silence_is_punished(server):
    srv = server(FIXTURE, idle_timeout=2.0, ping_interval=None)
    with running_feed(srv.url("/"), ping_interval=0.5, ping_timeout=2.0) as (good, _q1, c1), \
            running_feed(srv.url("/"), ping_interval=0, idle_timeout=60, backoff_min=30) as (silent, _q2, c2):
        time.sleep(3.5)
        assert c2.get("disconnects") >= 1, "the server should close a client that never pings"
        assert srv.idle_closes >= 1
        assert good.connected.is_set()
        assert c1.get("disconnects") == 0 and c1.get("reconnects") == 0 and c1.get("frames_received") == 44


def _raw_server(handshake: bool):
    """A TCP server that accepts and then never answers (handshake=False), or completes the websocket
    handshake and then ignores everything, pings included (handshake=True)."""
    lsock = socket.create_server(("127.0.0.1", 0))
    state = {"accepts": 0, "socks": [], "stop": False}

    def serve():
        lsock.settimeout(0.2)
        while not state["stop"]:
            try:
                s, _ = lsock.accept()
            except (socket.timeout, OSError):
                continue
            state["accepts"] += 1
            state["socks"].append(s)
            if handshake:
                threading.Thread(target=answer, args=(s,), daemon=True).start()

    def answer(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return
            data += chunk
        key = [ln.split(b":", 1)[1].strip() for ln in data.split(b"\r\n") if ln.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        with contextlib.suppress(OSError):
            while s.recv(4096):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def close():
        state["stop"] = True
        t.join(2)
        for s in state["socks"]:
            s.close()
        lsock.close()
    return lsock.getsockname()[1], state, close


def test_server_that_never_answers_the_handshake():
    port, state, close = _raw_server(handshake=False)
    try:
        with running_feed(f"ws://127.0.0.1:{port}/", connect_timeout=0.5) as (feed, q, c):
            assert wait_for(lambda: state["accepts"] >= 2, interval=0.02)
            assert c.get("connect_errors") >= 1 and c.get("reconnects") == 0
    finally:
        close()


def test_dead_connection_after_handshake_is_detected():
    port, state, close = _raw_server(handshake=True)
    try:
        with running_feed(f"ws://127.0.0.1:{port}/", ping_interval=0.3, ping_timeout=0.5) as (feed, q, c):
            assert wait_for(lambda: c.get("reconnects") >= 1, interval=0.02), c.snapshot()
            assert c.get("dead_connections") >= 1 and state["accepts"] >= 2
    finally:
        close()


def test_huge_and_malformed_frames(server):
    cert = fixture_lines()[0]
    big = json.dumps({"message_type": "certificate_update", "data": {"pad": "A" * (10 * 1024 * 1024)}})
    raw = ["not json at all", big, b'{"x":"\xff\xfe"}', "", "[1,2,3]", '{"message_type":"heartbeat"', cert]
    srv = server(frames=raw)
    with running_feed(srv.url("/full-stream")) as (feed, q, c):
        got = collect(q, len(raw), timeout=15)
    assert got[0] == "not json at all" and got[1] == big and got[2] == '{"x":"\ufffd\ufffd"}'
    assert got[3:] == ["", "[1,2,3]", '{"message_type":"heartbeat"', cert.decode()]
    assert c.get("frames_received") == len(raw) and c.get("frames_too_large") == 0
    with running_feed(srv.url("/full-stream"), max_frame_bytes=1 << 20) as (feed, q, c):
        got = collect(q, len(raw) - 1, timeout=15)
        assert collect(q, 1, 0.3) == []
    assert c.get("frames_too_large") == 1 and big not in got and got[-1] == cert.decode()


def test_binary_and_fragmented_oversize_messages_are_skipped():
    """A hand-made websockets server: a binary frame, a text message in three fragments whose total is
    over the cap (each fragment is under it), then a normal frame."""
    from websockets.asyncio.server import serve

    ready, done = threading.Event(), threading.Event()
    info = {}

    async def handler(ws):
        await ws.send(b"\x00\x01binary")
        await ws.send(["x" * 400_000, "y" * 400_000, "z" * 400_000])   # fragmented: 1.2 MB in all
        await ws.send(["small ", "fragmented"])
        await ws.send("after")
        await ws.wait_closed()

    async def main():
        async with serve(handler, "127.0.0.1", 0, compression=None) as srv:
            info["port"] = srv.sockets[0].getsockname()[1]
            ready.set()
            while not done.is_set():
                await asyncio.sleep(0.05)

    t = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    t.start()
    assert ready.wait(5)
    try:
        with running_feed(f"ws://127.0.0.1:{info['port']}/", max_frame_bytes=1_000_000) as (feed, q, c):
            got = collect(q, 2, timeout=5)
            assert got == ["small fragmented", "after"]
            assert c.get("frames_skipped_binary") == 1 and c.get("frames_too_large") == 1
            assert feed.connected.is_set()
    finally:
        done.set()
        t.join(5)


def test_stop_is_prompt_while_reading_and_while_backing_off(server):
    """Stop does not wait for the next ping (60 s away) nor for the end of a backoff (at least 60 s):
    the feed stops well before either (a generous bound, the machine may be loaded)."""
    srv = server(frames=[])                      # connects, then nothing ever arrives
    with running_feed(srv.url("/"), ping_interval=60.0) as (feed, q, c):
        assert wait_for(feed.connected.is_set)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 20
    port = srv.port
    srv.stop()
    with running_feed(f"ws://127.0.0.1:{port}/", backoff_min=60.0, backoff_max=120.0) as (feed, q, c):
        assert wait_for(lambda: c.get("connect_errors") >= 1)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 20


def test_rate_pacing(server):
    """At --rate 1000 the server never runs ahead of its schedule (frame n is due n/1000 s after the
    client connected): 1,500 frames cannot arrive in less than 1.5 s, however fast the machine. How
    closely it keeps the rate on a quiet machine is a speed figure (bench/), not a test."""
    srv = server(FIXTURE, rate=1000, loop=True)
    t0 = time.monotonic()
    with running_feed(srv.url("/domains-only")) as (feed, q, c):
        assert wait_for(lambda: c.get("frames_received") >= 1500, timeout=120, interval=0.01)
        took = time.monotonic() - t0
    assert took >= 1.49, took


# -- third-party client -----------------------------------------------------------------------------------

_CERTSTREAM_CLIENT = r"""
import json, os, sys, certstream
want = int(sys.argv[2]); seen = []
def cb(message, context):
    seen.append(message)
    if len(seen) == want:
        print(json.dumps([[m["message_type"], m["data"]["leaf_cert"]["all_domains"],
                           "chain" in m["data"]] for m in seen]), flush=True)
        os._exit(0)
certstream.listen_for_events(cb, url=sys.argv[1], setup_logger=False)
"""


@pytest.mark.parametrize("endpoint", ["full", "lite"])
def test_calidog_certstream_client(server, endpoint):
    pytest.importorskip("certstream")
    srv = server(FIXTURE)
    proc = subprocess.run([sys.executable, "-c", _CERTSTREAM_CLIENT, srv.url(PATHS[endpoint]), "40"],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    certs = [json.loads(line) for line in fixture_lines() if b'"certificate_update"' in line]
    assert [g[1] for g in got] == [f["data"]["leaf_cert"]["all_domains"] for f in certs]
    assert {g[0] for g in got} == {"certificate_update"}          # heartbeats were skipped by the client
    assert all(g[2] == (endpoint == "full") for g in got)


# -- CLI entry points -------------------------------------------------------------------------------------

@pytest.fixture
def settings(monkeypatch):
    from scout import config
    monkeypatch.setattr(config, "_current", config.Settings())


def test_record_writes_frames_until_max_frames(server, tmp_path, settings, capsys):
    from scout.sources.record import main_record
    srv = server(FIXTURE)
    out = tmp_path / "rec.jsonl"
    assert main_record([str(out), "--url", srv.url("/full-stream"), "--max-frames", "44"]) == 0
    assert out.read_bytes().splitlines() == srv.frames["full"]
    assert "recorded 44 frame(s)" in capsys.readouterr().err
    # and the recording replays to the same frames
    srv2 = server(out)
    assert srv2.frames["full"] == srv.frames["full"] and srv2.frames["lite"] == srv.frames["lite"]


def test_record_stops_after_duration(server, tmp_path, settings):
    from scout.sources.record import main_record
    srv = server(FIXTURE, rate=200, loop=True)
    out = tmp_path / "rec.jsonl"
    t0 = time.monotonic()
    assert main_record([str(out), "--url", srv.url("/domains-only"), "--duration", "1"]) == 0
    took = time.monotonic() - t0
    assert 1.0 <= took < 60            # the feed loops for ever: only the duration ends the recording
    lines = out.read_bytes().splitlines()
    # Paced at 200/s the server cannot send more than 200 frames a second (it may send fewer under load).
    assert 1 <= len(lines) <= 200 * took + 1 and lines[0] == srv.frames["domains"][0]


def test_record_rejects_bad_arguments(settings, tmp_path, capsys):
    from scout.sources.record import main_record
    assert main_record([str(tmp_path / "x"), "--url", "http://nope"]) == 2
    assert main_record([str(tmp_path / "x")]) == 2                    # no URL anywhere
    assert main_record([str(tmp_path / "x"), "--url", "ws://127.0.0.1:1/", "--max-frames", "0"]) == 2


def test_replay_server_cli(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from scout.sources.replay import main_replay; "
                             "sys.exit(main_replay(sys.argv[1:]))", str(FIXTURE), "--port", str(port),
                             "--rate", "500"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        while not any(f"ws://127.0.0.1:{port}/full-stream" in ln for ln in lines):   # log lines, then the banner
            lines.append(proc.stderr.readline())
            assert lines[-1] and len(lines) < 10, lines
        with running_feed(f"ws://127.0.0.1:{port}/full-stream") as (feed, q, c):
            assert len(collect(q, 44, timeout=5)) == 44
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""Alerts: the JSONL file (also with several processes writing), and the webhook (a local HTTP server)."""
from __future__ import annotations

import datetime
import json
import multiprocessing
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scout.stages.alerts import AlertSink, alert_file_path
from scout.config import Settings


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


class Receiver:
    """A webhook on 127.0.0.1 that answers the statuses in `script` in turn (then 200) and keeps bodies."""

    def __init__(self, script: list[int] | None = None):
        self.script = list(script or [])
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.attempts = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.attempts += 1
                    status = outer.script.pop(0) if outer.script else 200
                    if status == 200:
                        outer.bodies.append(json.loads(body))
                        outer.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.bodies) >= n:
                    return True
            time.sleep(0.01)
        return False

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


def settings(tmp_path: Path, **kw) -> Settings:
    base = {"alert_min_score": 50, "alert_file": str(tmp_path / "alerts.jsonl"), "output_dir": str(tmp_path)}
    base.update(kw)
    return Settings(**base)


def doc(domain: str, score: int, **extra) -> dict:
    return {"domain": domain, "score": score, "matches": [{"rule": "keyword", "value": "login", "score": score}],
            **extra}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_threshold_and_file(tmp_path):
    sink = AlertSink(settings(tmp_path))
    assert sink.maybe_alert(doc("a.example", 49)) is False
    assert sink.maybe_alert(doc("b.example", 50)) is True
    assert sink.maybe_alert(doc("c.example", 120, seen=datetime.datetime(2026, 1, 2, 3, 4, 5), tags={"x"}))
    assert sink.maybe_alert({"domain": "no-score.example"}) is False
    assert sink.maybe_alert({"domain": "bad-score.example", "score": "99"}) is False
    lines = read_lines(tmp_path / "alerts.jsonl")
    assert [x["domain"] for x in lines] == ["b.example", "c.example"]
    assert lines[1]["seen"] == "2026-01-02 03:04:05"
    assert sink.counters.get("alerts") == 2
    assert sink.close(1)


def test_disabled_when_min_score_is_zero(tmp_path):
    sink = AlertSink(settings(tmp_path, alert_min_score=0))
    assert sink.maybe_alert(doc("a.example", 1000)) is False
    assert not (tmp_path / "alerts.jsonl").exists()


def test_default_file_is_in_output_dir(tmp_path):
    s = settings(tmp_path, alert_file="", output_dir=str(tmp_path / "out" / "data"))
    assert alert_file_path(s) == tmp_path / "out" / "data" / "alerts.jsonl"
    AlertSink(s).maybe_alert(doc("a.example", 60))
    assert read_lines(tmp_path / "out" / "data" / "alerts.jsonl")[0]["domain"] == "a.example"


def test_unwritable_file_does_not_raise(tmp_path):
    (tmp_path / "adir").mkdir()
    sink = AlertSink(settings(tmp_path, alert_file=str(tmp_path / "adir")))  # a directory: open() fails
    assert sink.maybe_alert(doc("a.example", 60)) is True
    assert sink.counters.get("alert_file_errors") == 1


def test_webhook_receives_the_document(tmp_path, receiver):
    sink = AlertSink(settings(tmp_path, alert_webhook_url=receiver.url))
    d = doc("paypa1.tk", 90, root_domain="paypa1.tk")
    sink.maybe_alert(d)
    sink.maybe_alert(doc("low.example", 10))
    assert sink.close(5)
    assert receiver.bodies == [d]
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert sink.counters.get("webhook_sent") == 1


def test_webhook_retries_until_delivered(tmp_path):
    r = Receiver(script=[500, 503])
    try:
        sink = AlertSink(settings(tmp_path, alert_webhook_url=r.url), backoff=0.05)
        sink.maybe_alert(doc("retry.example", 70))
        assert r.wait_for(1)
        assert sink.close(5)
        assert r.attempts == 3 and r.bodies[0]["domain"] == "retry.example"
        c = sink.counters.snapshot()
        assert (c.get("webhook_sent"), c.get("webhook_retries"), c.get("webhook_failed", 0)) == (1, 2, 0)
    finally:
        r.close()


def test_webhook_gives_up_after_attempts_and_on_client_errors(tmp_path):
    r = Receiver(script=[500, 500, 500, 400])
    try:
        sink = AlertSink(settings(tmp_path, alert_webhook_url=r.url), backoff=0.01, attempts=3)
        sink.maybe_alert(doc("a.example", 70))   # 500, 500, 500: gives up
        sink.maybe_alert(doc("b.example", 70))   # 400: not retried
        sink.maybe_alert(doc("c.example", 70))   # 200
        assert sink.close(5)
        assert r.attempts == 5
        assert [b["domain"] for b in r.bodies] == ["c.example"]
        assert sink.counters.get("webhook_failed") == 2
        # the file has all three whatever happened to the webhook
        assert len(read_lines(tmp_path / "alerts.jsonl")) == 3
    finally:
        r.close()


def _unused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_dead_webhook_never_blocks_the_caller(tmp_path):
    # A listener that never accepts: connections hang until the client's timeout.
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(0)
    try:
        for url in (f"http://127.0.0.1:{black_hole.getsockname()[1]}/hook",
                    f"http://127.0.0.1:{_unused_port()}/hook"):
            # A post hangs for up to 60 s: a caller that waited for the network would take 60 s at least.
            sink = AlertSink(settings(tmp_path, alert_webhook_url=url), queue_size=10, timeout=60.0, backoff=0.5)
            t = time.perf_counter()
            for i in range(200):
                assert sink.maybe_alert(doc(f"d{i}.example", 99))
            elapsed = time.perf_counter() - t
            assert elapsed < 30, elapsed   # 200 file appends, no network wait (generous: a loaded machine)
            c = sink.counters.snapshot()
            assert c["alerts"] == 200
            assert c.get("webhook_dropped", 0) >= 200 - 10 - 1   # bounded queue (+1 being posted)
            t = time.perf_counter()
            assert sink.close(0.3) is False  # could not flush: says so, returns on time
            assert time.perf_counter() - t < 30   # not after the hanging post's 60 s
    finally:
        black_hole.close()


def test_close_flushes_queued_posts(tmp_path, receiver):
    sink = AlertSink(settings(tmp_path, alert_webhook_url=receiver.url))
    for i in range(30):
        sink.maybe_alert(doc(f"d{i}.example", 80))
    assert sink.close(10)
    assert sorted(b["domain"] for b in receiver.bodies) == sorted(f"d{i}.example" for i in range(30))
    assert sink.maybe_alert(doc("late.example", 80))   # still written to the file after close
    assert sink.counters.get("webhook_dropped") == 1


def _writer(path: str, proc: int, n: int) -> None:
    s = Settings(alert_min_score=1, alert_file=path)
    sink = AlertSink(s)
    pad = "x" * (6000 + proc * 500)   # lines larger than PIPE_BUF and than a page
    for i in range(n):
        sink.maybe_alert({"domain": f"p{proc}-{i}.example", "score": 10, "proc": proc, "i": i, "pad": pad})


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = tmp_path / "alerts.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), p, 150)) for p in range(4)]
    for p in procs:
        p.start()
    _writer(str(path), 9, 150)   # and this process at the same time
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5 * 150
    seen = set()
    for line in lines:
        d = json.loads(line)   # a torn or interleaved line would not parse
        assert d["pad"] == "x" * (6000 + d["proc"] * 500)
        seen.add((d["proc"], d["i"]))
    assert len(seen) == 5 * 150


def test_get_alert_sink_is_one_per_configuration(tmp_path):
    from scout.stages.alerts import get_alert_sink
    a = get_alert_sink(settings(tmp_path))
    assert get_alert_sink(settings(tmp_path)) is a
    assert get_alert_sink(settings(tmp_path, alert_min_score=70)) is not a

"""Issue 5: the NATS JetStream path, producer -> NATS -> `scout bridge` -> Celery workers -> files.

Real parts only: the machine's NATS (each test its own stream and subject, deleted afterwards), a
private `nats-server` for the restart test, Redis db 7 as broker and store, `celery worker` processes,
nsd for DNS. WHOIS is kept local: lookups are skipped by score (WHOIS_MIN_SCORE) and the bootstrap and
referral server point at a closed loopback port, so nothing could leave the machine anyway.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import (FIXTURE, emptied_redis, fixture_domains, redis_db, free_port, need_service, port_open, read_documents, run_scout,
                            scout_env, validate_documents, wait_for)
from tests.servers.rdap import rdap_bootstrap
from tests.servers.traps import SlowProxy
from tests.support import feed
from tests.support.feed import recording

REDIS_DB_URL = redis_db(7)      # this test area's Redis database
SHARED_NATS = "nats://127.0.0.1:4222"


# ------------------------------------------------------------------ helpers

def synthetic_recording(path: Path, count: int, tag: str, per_frame: int = 20) -> set[str]:
    """dns_entries frames of `count` names under a wildcard zone nsd answers for."""
    names = [f"{tag}{i}.preview-pages.example" for i in range(count)]
    recording(path, names, per_frame)
    return set(names)


def nats_call(url: str, fn):
    """Run `await fn(js)` against NATS at `url` with a fresh connection."""
    import nats

    async def main():
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            return await fn(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


def stream_messages(url: str, stream: str) -> int:
    async def f(js):
        return (await js.stream_info(stream)).state.messages

    return nats_call(url, f)


def consumer_state(url: str, stream: str):
    from scout.producer.bridge import DURABLE

    async def f(js):
        return await js.consumer_info(stream, DURABLE)

    return nats_call(url, f)


@pytest.fixture
def broker():
    """Redis db 7, emptied before and after: Celery broker and the workers' store."""
    yield from emptied_redis(REDIS_DB_URL)


@pytest.fixture
def stream():
    """A stream name and subject of this test's own on the shared NATS; deleted afterwards."""
    need_service("NATS", 4222)
    tag = uuid.uuid4().hex[:10]
    name, subject = f"SCOUTTEST_{tag.upper()}", f"scouttest.{tag}.domains"
    yield {"NATS_URL": SHARED_NATS, "NATS_STREAM": name, "NATS_SUBJECT": subject}

    async def delete(js):
        try:
            await js.delete_stream(name)
        except Exception:
            pass

    nats_call(SHARED_NATS, delete)


@pytest.fixture(scope="module")
def local_whois(tmp_path_factory):
    """WHOIS settings that cannot reach anything but a closed loopback port."""
    env = rdap_bootstrap(tmp_path_factory.mktemp("whois"), "http://127.0.0.1:9/")
    return {"RDAP_BOOTSTRAP_DIR": env["RDAP_BOOTSTRAP_DIR"], "WHOIS_REFERRAL_SERVER": "127.0.0.1:9",
            "WHOIS_MIN_SCORE": "100000", "WHOIS_TIMEOUT": "1s"}


def base_env(tmp_path, dns_server, local_whois, nats_env, **extra) -> dict:
    return scout_env(DNS_SERVER=dns_server, OUTPUT_DIR=tmp_path / "out", SINK="nats", STATS_INTERVAL="1s",
                     **local_whois, **nats_env, **extra)


def produce(env: dict, source: Path) -> dict:
    """`scout produce --sink nats --source FILE` without a broker or Redis; -> its counters."""
    return feed.produce(env, source, "--sink", "nats")


class BridgeProc:
    def __init__(self, env: dict, cwd: Path, label: str):
        self.log = cwd / f"bridge-{label}.log"
        self.out = cwd / f"bridge-{label}.out"
        self.proc = subprocess.Popen([sys.executable, "-m", "scout", "bridge"], env=env, cwd=cwd,
                                     stdout=open(self.out, "w"), stderr=open(self.log, "w"),
                                     start_new_session=True)
        wait_for(lambda: "bridge: consuming" in self.log.read_text() or self.proc.poll() is not None,
                 timeout=30, interval=0.05, message="bridge bound to its consumer")
        assert self.proc.poll() is None, self.log.read_text()[-3000:]

    def stop(self) -> dict:
        """SIGTERM, then its printed counters."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        assert self.proc.returncode == 0, self.log.read_text()[-3000:]
        return json.loads(self.out.read_text().strip().splitlines()[-1])

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def bridges():
    made: list[BridgeProc] = []

    def make(env, cwd, label):
        b = BridgeProc(env, cwd, label)
        made.append(b)
        return b

    yield make
    for b in made:
        b.kill()


# ------------------------------------------------------------------ end to end

@pytest.mark.slow
def test_fixture_through_nats_two_bridges(tmp_path, dns_server, local_whois, broker, stream, workers, bridges):
    """producer -> NATS -> two bridges on one durable consumer -> a real worker -> files: every domain
    once, with its certificate facts; a message that is not a domain is dropped and counted."""
    env = base_env(tmp_path, dns_server, local_whois, stream, BATCH_SIZE=5)
    worker_env = dict(env, BROKER_URL=broker)
    workers(worker_env).start("all", concurrency=8)
    b1 = bridges(worker_env, tmp_path, "1")
    b2 = bridges(worker_env, tmp_path, "2")

    async def garbage(js):
        await js.publish(stream["NATS_SUBJECT"], b"not a domain", stream=stream["NATS_STREAM"])

    nats_call(SHARED_NATS, garbage)
    counts = produce(env, FIXTURE)
    expected = fixture_domains()
    assert counts["nats_published"] == counts["unique"] == len(expected)
    assert not any(k.startswith("dropped") for k in counts), counts

    out = tmp_path / "out"
    wait_for(lambda: set(read_documents(out)) == expected, timeout=60, message="every fixture domain saved")
    wait_for(lambda: consumer_state(SHARED_NATS, stream["NATS_STREAM"]).num_ack_pending == 0, timeout=10,
             message="every message acknowledged")
    c1, c2 = b1.stop(), b2.stop()
    # Shared durable consumer: together the bridges enqueued each domain exactly once.
    assert c1.get("enqueued", 0) + c2.get("enqueued", 0) == len(expected), (c1, c2)
    assert c1.get("bridge_bad_messages", 0) + c2.get("bridge_bad_messages", 0) == 1
    assert c1.get("bridge_redelivered", 0) + c2.get("bridge_redelivered", 0) == 0
    info = consumer_state(SHARED_NATS, stream["NATS_STREAM"])
    assert info.num_pending == 0 and info.num_ack_pending == 0

    docs = read_documents(out)
    validate_documents(docs)
    cert = docs["shop-example-login.example"]["certificate"]
    assert cert["sha256"].startswith("E0:7C")
    assert docs["shop-example-login.example"]["a_records"] == ["198.51.100.10"]


@pytest.mark.slow
def test_backlog_survives_producer_restart_and_bridge_sigkill(tmp_path, dns_server, local_whois, broker,
                                                            stream, workers, bridges):
    """A backlog published with no bridge running is kept across a producer restart (not purged,
    limits from configuration); a bridge SIGKILLed mid-backlog and restarted loses nothing."""
    names = synthetic_recording(tmp_path / "names.jsonl", 300, "k")
    env = base_env(tmp_path, dns_server, local_whois, stream, BATCH_SIZE=5, NATS_ACK_WAIT="2s",
                   NATS_MAX_AGE="2h", NATS_MAX_BYTES=50_000_000)
    first = produce(env, tmp_path / "names.jsonl")
    assert first["nats_published"] == 300
    assert stream_messages(SHARED_NATS, stream["NATS_STREAM"]) == 300

    # The producer restarts (its own de-duplication memory is gone): the backlog stays.
    second = produce(dict(env, NATS_MAX_AGE="3h"), tmp_path / "names.jsonl")
    assert second["nats_published"] == 300
    assert stream_messages(SHARED_NATS, stream["NATS_STREAM"]) == 600

    async def config(js):
        return (await js.stream_info(stream["NATS_STREAM"])).config

    cfg = nats_call(SHARED_NATS, config)
    assert cfg.max_age == 3 * 3600 and cfg.max_bytes == 50_000_000   # limits follow configuration

    def nats_stats(e):
        r = run_scout(["stats", "--json"], e, timeout=60, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout)["nats"]

    before = nats_stats(env)                                       # `scout stats` shows the backlog
    assert before["messages"] == 600 and before["bridge_pending"] is None

    worker_env = dict(env, BROKER_URL=broker)
    workers(worker_env).start("all", concurrency=8)
    # The first bridge reaches the broker through a proxy that delays each request 50 ms: the 600
    # messages take it well over 10 s, so the kill lands mid-backlog however loaded the machine is.
    host, port = broker.split("//", 1)[1].split("/", 1)[0].split(":")
    proxy = SlowProxy(host, int(port), delay=0.05).start()
    slow_broker = broker.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    try:
        b1 = bridges(dict(worker_env, BROKER_URL=slow_broker), tmp_path, "killed")
        # Kill it mid-stream: some messages acknowledged, many not yet.
        wait_for(lambda: consumer_state(SHARED_NATS, stream["NATS_STREAM"]).ack_floor.stream_seq >= 50, timeout=60,
                 message="the first bridge acknowledged some messages")
        b1.kill()
    finally:
        proxy.stop()
    info = consumer_state(SHARED_NATS, stream["NATS_STREAM"])
    assert info.ack_floor.stream_seq < 600, "the bridge finished before it could be killed"
    assert stream_messages(SHARED_NATS, stream["NATS_STREAM"]) == 600

    b2 = bridges(worker_env, tmp_path, "restarted")
    out = tmp_path / "out"
    wait_for(lambda: set(read_documents(out)) == names, timeout=90, message="every backlog domain saved")
    wait_for(lambda: (lambda i: i.num_pending == 0 and i.num_ack_pending == 0)(
        consumer_state(SHARED_NATS, stream["NATS_STREAM"])), timeout=30, message="backlog fully acknowledged")
    counts = b2.stop()
    assert counts["enqueued"] + info.ack_floor.stream_seq >= 600   # nothing the killed bridge left is lost
    after = nats_stats(worker_env)
    assert after["bridge_pending"] == 0 and after["bridge_ack_pending"] == 0

    import redis

    r = redis.Redis.from_url(broker)
    wait_for(lambda: int(r.hget("scout:counters", "domains_saved") or 0) >= 600, timeout=30,
             message="every message saved at least once")
    validate_documents(read_documents(out))


@pytest.fixture
def private_nats(tmp_path):
    """A private nats-server with JetStream on a free port; `restart()` keeps its store directory."""
    exe = shutil.which("nats-server")
    if not exe:
        if os.environ.get("CI"):
            pytest.fail("nats-server is not installed (scripts/setup.sh installs it)")
        pytest.skip("nats-server not installed")
    port = free_port()
    store = tmp_path / "nats-store"

    class Server:
        url = f"nats://127.0.0.1:{port}"
        proc = None

        def start(self):
            self.proc = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                                         stdout=subprocess.DEVNULL, stderr=open(tmp_path / "nats.log", "a"))
            wait_for(lambda: port_open("127.0.0.1", port), timeout=20, interval=0.05, message="private nats-server up")

        def stop(self):
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(20)

    s = Server()
    s.start()
    yield s
    s.stop()


@pytest.mark.slow
def test_nats_server_restart(tmp_path, dns_server, local_whois, broker, private_nats, workers, bridges):
    """NATS restarts: the bridge reconnects; a producer that publishes while it is down buffers and
    delivers once it is back; the backlog is processed."""
    nats_env = {"NATS_URL": private_nats.url, "NATS_STREAM": "SCOUT_RESTART", "NATS_SUBJECT": "restart.domains"}
    env = base_env(tmp_path, dns_server, local_whois, nats_env, BATCH_SIZE=10)
    worker_env = dict(env, BROKER_URL=broker)
    workers(worker_env).start("all", concurrency=8)
    bridge = bridges(worker_env, tmp_path, "r")
    out = tmp_path / "out"

    before = synthetic_recording(tmp_path / "before.jsonl", 60, "b")
    assert produce(env, tmp_path / "before.jsonl")["nats_published"] == 60
    wait_for(lambda: before <= set(read_documents(out)), timeout=60, message="domains published before the restart")

    private_nats.stop()
    during = synthetic_recording(tmp_path / "during.jsonl", 80, "d")
    producer = subprocess.Popen([sys.executable, "-m", "scout", "produce", "--source", str(tmp_path / "during.jsonl")],
                                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)                          # reading and buffering while NATS is down
        assert producer.poll() is None, producer.communicate()[1][-3000:]
        private_nats.start()
        stdout, stderr = producer.communicate(timeout=60)
    finally:
        if producer.poll() is None:
            producer.kill()
    assert producer.returncode == 0, stderr[-3000:]
    counts = json.loads(stdout.strip().splitlines()[-1])
    assert counts["nats_published"] == 80 and not any(k.startswith("dropped") for k in counts), counts

    wait_for(lambda: (before | during) == set(read_documents(out)), timeout=60,
             message="domains published while NATS was down, saved after it came back")
    c = bridge.stop()
    assert c["enqueued"] == 140 and c.get("nats_reconnected", 0) >= 1, c


@pytest.mark.slow
def test_run_with_nats_sink_in_one_process(tmp_path, dns_server, local_whois, stream):
    """`scout run --source` with SINK=nats and no broker: producer, JetStream, an in-process bridge and
    embedded workers; it exits once every published domain is saved."""
    env = base_env(tmp_path, dns_server, local_whois, stream)
    r = subprocess.run([sys.executable, "-m", "scout", "run", "--source", str(FIXTURE)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    expected = fixture_domains()
    assert summary["unique"] == summary["saved"] == len(expected), (summary, r.stderr[-4000:])
    assert set(read_documents(tmp_path / "out")) == expected
    assert stream_messages(SHARED_NATS, stream["NATS_STREAM"]) == len(expected)   # kept, not purged
    info = consumer_state(SHARED_NATS, stream["NATS_STREAM"])
    assert info.num_pending == 0 and info.num_ack_pending == 0


# ------------------------------------------------------------------ the sink alone

def test_sink_buffer_is_bounded_while_nats_is_away():
    """No NATS at all: the sink keeps NATS_BUFFER domains, counts the rest as dropped and forgets
    them in the de-duplication store so they come back; at close what is left is counted too."""
    from scout.config import load_settings
    from scout.counters import Counters
    from scout.producer.nats_sink import NatsSink
    from scout.store import MemoryStore

    s = load_settings({"NATS_URL": f"nats://127.0.0.1:{free_port()}", "NATS_BUFFER": "10"}, None)
    store, counters = MemoryStore(), Counters()
    names = [f"n{i}.example" for i in range(25)]
    assert all(store.add_if_new(names, 3600))
    sink = NatsSink(s, counters, store=store)
    sink.submit([{"d": n, "r": n, "seen": 1.0} for n in names])
    assert counters.get("dropped_nats_buffer") == 15
    assert sink.backlogged()
    assert store.add_if_new(names[10:], 3600) == [True] * 15       # dropped names were forgotten
    assert store.add_if_new(names[:10], 3600) == [False] * 10      # buffered ones were not
    started = time.monotonic()
    sink.close(timeout=0.5)
    assert time.monotonic() - started < 60        # returns (generous: a loaded machine); a hang never does
    assert counters.get("dropped_publish") == 10 and counters.get("nats_published") == 0
    assert store.add_if_new(names[:10], 3600) == [True] * 10


def test_bridge_refuses_to_start_without_a_broker(tmp_path):
    env = scout_env(SINK="nats")
    r = subprocess.run([sys.executable, "-m", "scout", "bridge"], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "BROKER_URL" in r.stderr

"""Issue 6: nothing lost. Every domain that entered the pipeline ends as a saved document or in the failed
store, under real faults: workers killed with SIGKILL mid-task, Redis killed and restarted, the DNS and
WHOIS servers away, a full disk, graceful stops (SIGTERM), and backpressure.

Real parts only: Redis (db 9 of the shared server, or a private redis-server this file may kill), nsd,
the local RDAP server, `celery worker` processes, `scout produce`, the replay server. Faults are injected
for real: signals to processes, servers stopped, RLIMIT_FSIZE on a save worker.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from scout.sources.replay import ReplayServer
from scout.store import RedisStore
from tests.conftest import emptied_redis, free_port, read_documents, run_scout, scout_env, validate_documents, wait_for
from tests.support.feed import produce, recording
from tests.support.reliability import (RELIABILITY_REDIS, PrivateRedis, failed_domains, last_delivery, scout_proc,
                                       start_worker,
                                       unacked_by_queue)
from tests.servers.dns_nsd import start_nsd, stop_nsd
from tests.servers.processes import reading, stop_gracefully
from tests.servers.rdap import rdap_bootstrap
from tests.support.zones import EXPECTED, zone_texts

# Every test here kills, restarts or starves real processes: long end-to-end tests (`-m "not slow"` skips them).
pytestmark = pytest.mark.slow

SERVED = ["acme-widgets.example", "examplebank.test", "portal.example.org", "cdn.example.net", "saas.example.com"]


@pytest.fixture
def rel_redis():
    yield from emptied_redis(RELIABILITY_REDIS)


@pytest.fixture
def procs():
    """Worker processes started by a test; whatever is still running at the end is killed."""
    started = []
    yield started
    for p in started:
        p.stop(signal.SIGKILL, timeout=10)


def produce_file(env: dict, names: list[str], tmp: Path, per_frame: int = 5) -> dict:
    return produce(env, recording(tmp / f"rec-{len(list(tmp.glob('rec-*')))}.jsonl", names, per_frame))


def read_everything(log: Path, unique: int) -> None:
    """Until the producer's summary line (every STATS_INTERVAL) says it has read `unique` new domains: a
    loaded machine may still be reading a second after the server sent the last frame."""
    wait_for(lambda: f"unique={unique} " in log.read_text(errors="replace"), timeout=90,
             message=f"the producer's log showing unique={unique}")


def lock_roots(out: Path, roots) -> list[int]:
    """Hold the save stage's own lock (flock on each root's directory): save tasks block mid-task."""
    fds = []
    for root in roots:
        (out / root).mkdir(parents=True, exist_ok=True)
        fd = os.open(out / root, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)
    return fds


def unlock(fds) -> None:
    for fd in fds:
        os.close(fd)


def no_temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.startswith(".tmp-")]


# ------------------------------------------------------------------ SIGKILL mid-task

def test_sigkill_mid_task_reruns_dns_lookup_and_save_on_another_worker(tmp_path, rel_redis, dns_server, rdap, procs):
    """dns tasks hang on a server that never answers, WHOIS lookups on an RDAP server that drips, save
    tasks on the root's lock: each worker is SIGKILLed holding them; after VISIBILITY_TIMEOUT the broker
    hands them to new workers and every domain is saved with its WHOIS answer."""
    out = tmp_path / "out"
    vt = 8
    rdap.default = ("drip", {"interval": 0.5, "max_wait": 60})
    good = scout_env(BROKER_URL=rel_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, VISIBILITY_TIMEOUT=f"{vt}s",
                     BATCH_SIZE=5, TASK_MAX_RETRIES=3, RETRY_BASE_DELAY="1s",
                     **dict(rdap_bootstrap(tmp_path, rdap.base), WHOIS_TIMEOUT="60s"))
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blackhole.bind(("127.0.0.1", 0))                   # takes queries, never answers
    bad_dns = dict(good, DNS_SERVER=f"127.0.0.1:{blackhole.getsockname()[1]}", DNS_TIMEOUT="60s", DNS_RETRIES="0")
    names = SERVED + [f"k{i}.acme-widgets.example" for i in range(10)]
    roots = {"acme-widgets.example", "examplebank.test", "example.org", "example.net", "example.com"}
    locks = lock_roots(out, roots)
    try:
        procs.append(dns_a := start_worker(bad_dns, tmp_path, "dns", "dns-a"))
        procs.append(start_worker(good, tmp_path, "whois", "whois"))
        procs.append(lookup_a := start_worker(good, tmp_path, "lookup", "lookup-a"))
        procs.append(save_a := start_worker(good, tmp_path, "save", "save-a"))
        assert produce_file(good, names, tmp_path)["enqueued"] == len(names)

        # 1. Every dns batch is inside dns-a (blocked on the silent server): kill it.
        wait_for(lambda: unacked_by_queue(rel_redis).get("dns") == 3, timeout=20, message="3 dns tasks in dns-a")
        delivered_at = last_delivery(rel_redis)
        dns_a.stop(signal.SIGKILL)
        procs.append(start_worker(good, tmp_path, "dns", "dns-b"))

        # 2. The batches come back after the visibility timeout, reach save-a (blocked on the lock) and
        #    dispatch WHOIS lookups to lookup-a (the RDAP server drips its answers): kill both.
        wait_for(lambda: (lambda u: u.get("save") == 3 and u.get("whois.default", 0) == len(roots))(
            unacked_by_queue(rel_redis)) and rdap.requests, timeout=40,
            message="3 save tasks and 5 lookups in flight, the first lookup at the RDAP server")
        assert time.time() - delivered_at >= vt - 1        # redelivered by the timeout, not earlier
        assert not read_documents(out)
        save_a.stop(signal.SIGKILL)
        lookup_a.stop(signal.SIGKILL)
    finally:
        unlock(locks)
    rdap.default = ("notfound", {})
    first_requests = len(rdap.requests)
    procs.append(start_worker(good, tmp_path, "save", "save-b"))
    procs.append(start_worker(good, tmp_path, "lookup", "lookup-b"))

    def done():
        docs = read_documents(out)
        return set(docs) == set(names) and all(d["domain_whois_parsed"]["status"] == "not_found"
                                               for d in docs.values())

    wait_for(done, timeout=60, message="every domain saved with its WHOIS answer after the kills")
    docs = read_documents(out)
    validate_documents(docs)
    assert docs["acme-widgets.example"]["a_records"] == EXPECTED["acme-widgets.example"]["a_records"]
    assert len(rdap.requests) - first_requests >= len(roots)        # the killed lookups ran again
    store = RedisStore(rel_redis)
    assert store.list_failed() == []
    assert set(read_documents(out)) == set(names)
    assert no_temp_files(out) == []


# ------------------------------------------------------------------ Redis restarted

def test_redis_killed_and_restarted_while_producer_and_workers_run(tmp_path, dns_server, rdap, procs):
    """A private, persistent Redis (AOF, fsync always) is SIGKILLed mid-stream and restarted on its port:
    the producer keeps what it could not publish and sends it later, the workers reconnect, messages
    taken before the crash come back after the visibility timeout, and a message popped just before the
    crash (gone from Redis: kombu notes it as unacked only after the pop) is sent again by the producer's
    ledger sweeper after LEDGER_TIMEOUT; every domain is accounted for."""
    redis_server = PrivateRedis(tmp_path).start()
    try:
        out = tmp_path / "out"
        env = scout_env(BROKER_URL=redis_server.url, OUTPUT_DIR=out, DNS_SERVER=dns_server, BATCH_SIZE=10,
                        VISIBILITY_TIMEOUT="10s", LEDGER_TIMEOUT="12s", RETRY_BASE_DELAY="1s",
                        WHOIS_MIN_SCORE=1000, **rdap_bootstrap(tmp_path, rdap.base))
        procs.append(start_worker(env, tmp_path, "all", "all", concurrency=8))
        names = [f"r{i}.preview-pages.example" for i in range(400)]
        rec = recording(tmp_path / "stream.jsonl", names, per_frame=5)
        server = ReplayServer(rec, rate=25).start()
        producer = scout_proc(["produce", "--url", server.url("/domains-only")], env, tmp_path / "producer.log")
        with reading(producer, server):
            wait_for(lambda: server.frames_sent >= 20, timeout=30, message="the stream flowing")
            redis_server.kill(signal.SIGKILL)
            time.sleep(2)
            redis_server.start()
            wait_for(lambda: server.frames_sent >= 80, timeout=30, message="the whole stream sent")
            store = RedisStore(redis_server.url)
            restarts = []

            def supervised_progress():
                # Like compose's `restart: unless-stopped`: a worker that exited is started again. (kombu's
                # Redis transport can stop a threads-pool worker with "Unrecoverable error" when the
                # connection drops while a task acks; its unacked messages come back after the timeout.)
                if procs[-1].proc.poll() is not None:
                    restarts.append(procs[-1].proc.returncode)
                    procs.append(start_worker(env, tmp_path, "all", f"all-{len(restarts)}", concurrency=8))
                return set(read_documents(out)) >= set(names)

            try:
                wait_for(supervised_progress, timeout=90, message="every domain saved after the Redis restart")
            except AssertionError:
                missing = sorted(set(names) - set(read_documents(out)))
                raise AssertionError(f"{len(missing)} missing, e.g. {missing[:5]}; failed: "
                                     f"{sorted(failed_domains(store))[:5]}; counters {store.counters()}\n"
                                     f"{procs[0].text()[-3000:]}\n{(tmp_path / 'producer.log').read_text()[-2000:]}")
            stdout, _ = stop_gracefully(producer)
        assert producer.returncode == 0, (tmp_path / "producer.log").read_text()[-3000:]
        counts = json.loads(stdout.strip().splitlines()[-1])
        assert counts.get("dropped_publish", 0) == 0 and counts.get("dropped_backlog", 0) == 0
        assert counts["enqueued"] >= len(names)            # at least once: a batch may go twice
        # Saved, every one: DNS answered throughout, so a domain in the failed store is a loss here.
        assert set(read_documents(out)) == set(names) and not failed_domains(store)
        # The ledger settled every batch it wrote down, the re-sent ones included.
        wait_for(lambda: store.in_flight(time.time()) == (0, 0), timeout=30, message="the ledger empty")
        c = store.counters()
        assert c.get("domains_saved", 0) >= len(names), c
        validate_documents(read_documents(out))
        print(f"worker restarts after the Redis crash: {restarts}; "
              f"domains re-sent by the ledger: {c.get('ledger_resent', 0)}")
    finally:
        redis_server.kill()


# ------------------------------------------------------------------ messages the broker lost: the ledger

def _lose_queued_messages(redis_url: str, queue: str = "dns") -> int:
    """What a broker crash can do to a message a worker had just popped: it is nowhere any more."""
    import redis

    r = redis.Redis.from_url(redis_url)
    lost = r.llen(queue)
    r.delete(queue)
    return lost


def test_ledger_sends_again_what_the_broker_lost_while_the_producer_runs(tmp_path, rel_redis, dns_server, procs):
    """Chains published by a running producer vanish from the broker before any worker took them: the
    producer's sweeper sends them again LEDGER_TIMEOUT after they were enqueued, and every one is saved.
    Domains saved normally leave the ledger, so nothing is sent twice."""
    out = tmp_path / "out"
    # LEDGER_TIMEOUT leaves the test time to see every batch queued and to lose them all before the
    # sweeper may send any again (a loaded machine can take seconds to get there).
    env = scout_env(BROKER_URL=rel_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, BATCH_SIZE=10,
                    LEDGER_TIMEOUT="10s", WHOIS_MIN_SCORE=1000, WHOIS_REFERRAL_SERVER="127.0.0.1:9")
    store = RedisStore(rel_redis)
    names = [f"l{i}.preview-pages.example" for i in range(60)]
    server = ReplayServer(recording(tmp_path / "s.jsonl", names, per_frame=5), rate=100).start()
    producer = scout_proc(["produce", "--url", server.url("/domains-only")], env, tmp_path / "producer.log")
    with reading(producer, server) as servers:
        wait_for(lambda: store.in_flight(time.time())[0] == len(names), timeout=30,
                 message="every domain enqueued and in the ledger")
        assert _lose_queued_messages(rel_redis) == len(names) // 10
        lost_at = time.monotonic()
        procs.append(start_worker(env, tmp_path, "all", "all", concurrency=8))
        wait_for(lambda: set(read_documents(out)) == set(names), timeout=90,
                 message="the lost domains sent again and saved")
        assert time.monotonic() - lost_at >= 2               # by the sweeper after the timeout, not before
        assert store.counters()["ledger_resent"] == len(names)
        wait_for(lambda: store.in_flight(time.time()) == (0, 0), timeout=30, message="the ledger empty")

        # Business as usual: saved domains leave the ledger, nothing is re-sent.
        more = [f"m{i}.preview-pages.example" for i in range(30)]
        server.stop()
        server = ReplayServer(recording(tmp_path / "s2.jsonl", more, per_frame=5), rate=100, port=server.port).start()
        servers.append(server)
        wait_for(lambda: set(read_documents(out)) == set(names) | set(more), timeout=60, message="the next domains")
        time.sleep(11)                                       # longer than LEDGER_TIMEOUT: a sweep ran
        assert store.counters()["ledger_resent"] == len(names)
        assert store.in_flight(time.time()) == (0, 0)
        stop_gracefully(producer)
    validate_documents(read_documents(out))
    assert all(d["seen_count"] == 1 for d in read_documents(out).values())


def test_scout_sweep_sends_again_overdue_domains_and_stats_show_the_ledger(tmp_path, rel_redis, dns_server, procs):
    """No producer running: `scout sweep` does what its sweeper would; `scout stats` shows domains in
    flight and overdue; a failed batch leaves the ledger (it is accounted for in the failed store)."""
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=rel_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, BATCH_SIZE=5,
                    WHOIS_MIN_SCORE=1000, WHOIS_REFERRAL_SERVER="127.0.0.1:9")   # LEDGER_TIMEOUT: 1 h default
    store = RedisStore(rel_redis)
    names = [f"w{i}.preview-pages.example" for i in range(20)]
    assert produce_file(env, names, tmp_path)["enqueued"] == len(names)
    stats = json.loads(run_scout(["stats", "--json"], env, timeout=60).stdout)
    assert stats["in_flight"] == {"domains": len(names), "overdue": 0}
    assert _lose_queued_messages(rel_redis) == 4

    r = run_scout(["sweep"], env, timeout=60)                 # nothing is an hour old yet
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"resent": 0, "in_flight": len(names), "overdue": 0}
    r = run_scout(["sweep", "--older-than", "0s"], env, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["resent"] == len(names)
    procs.append(start_worker(env, tmp_path, "all", "all", concurrency=8))
    wait_for(lambda: set(read_documents(out)) == set(names), timeout=30, message="the swept domains saved")
    wait_for(lambda: store.in_flight(time.time()) == (0, 0), timeout=10, message="the ledger empty")
    assert "ledger:   in flight=0 domains" in run_scout(["stats"], env, timeout=60).stdout

    # A batch that fails for good is in the failed store, not in the ledger; its retry is in flight again.
    procs[-1].stop()
    bad = dict(env, TASK_MAX_RETRIES="0", DNS_SERVER="127.0.0.1:9", DNS_TIMEOUT="200ms", DNS_RETRIES="0")
    procs.append(start_worker(bad, tmp_path, "dns", "dns-bad"))
    store.forget(["w0.preview-pages.example"])
    produce_file(env, ["w0.preview-pages.example"], tmp_path)
    wait_for(store.list_failed, timeout=30, message="the batch in the failed store")
    assert store.in_flight(time.time()) == (0, 0)
    r = run_scout(["sweep", "--older-than", "0s"], env, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1])["resent"] == 0
    r = run_scout(["sweep"], dict(env, LEDGER_TIMEOUT="0s"), timeout=60)
    assert r.returncode == 2 and "LEDGER_TIMEOUT" in r.stderr


# ------------------------------------------------------------------ DNS and WHOIS servers away

def test_dns_server_down_then_up_and_whois_server_down(tmp_path, rel_redis, procs):
    """nsd stopped while domains arrive: the dns batches retry with backoff and are saved once it is back
    on its port. The RDAP server is down too: documents are saved with WHOIS pending, the lookups retry
    with backoff (nothing cached), and once the server is up they land in every document."""
    nsd_dir = tmp_path / "nsd"
    port = free_port()
    nsd, _ = start_nsd(zone_texts(), nsd_dir, port=port)
    out = tmp_path / "out"
    rdap_port = free_port()
    dead = f"http://127.0.0.1:{rdap_port}/"
    env = scout_env(BROKER_URL=rel_redis, OUTPUT_DIR=out, DNS_SERVER=f"127.0.0.1:{port}", DNS_TIMEOUT="300ms",
                    DNS_RETRIES=0, RETRY_BASE_DELAY="1s", TASK_MAX_RETRIES=6, BATCH_SIZE=5,
                    **dict(rdap_bootstrap(tmp_path, dead), WHOIS_TIMEOUT="1s"))
    procs.append(start_worker(env, tmp_path, "all", "all", concurrency=8))
    stop_nsd(nsd)
    try:
        assert produce_file(env, SERVED, tmp_path)["enqueued"] == len(SERVED)
        store = RedisStore(rel_redis)
        wait_for(lambda: store.counters().get("dns_retries", 0) >= 2 * len(SERVED), timeout=30,
                 message="dns batches retried while the server is down")
        assert not read_documents(out)
        nsd, _ = start_nsd(zone_texts(), nsd_dir, port=port)
        wait_for(lambda: set(read_documents(out)) == set(SERVED), timeout=60, message="documents once DNS is back")
        assert {d["domain_whois_parsed"]["status"] for d in read_documents(out).values()} == {"pending"}
        wait_for(lambda: store.counters().get("whois_server_down", 0) >= 2, timeout=30,
                 message="lookups retried while the RDAP server is down")
        from tests.servers.rdap import RdapServer

        with RdapServer(port=rdap_port):                 # back: answers not_found for every name
            wait_for(lambda: all(d["domain_whois_parsed"]["status"] == "not_found"
                                 for d in read_documents(out).values()), timeout=60,
                     message="the WHOIS answers landed in every document once the server is back")
    finally:
        stop_nsd(nsd)
    docs = read_documents(out)
    validate_documents(docs)
    for name in SERVED:
        if name in EXPECTED:
            assert docs[name]["a_records"] == EXPECTED[name]["a_records"]
    assert store.list_failed() == []
    assert store.in_flight(time.time()) == (0, 0)     # the retried batches left the ledger once saved


# ------------------------------------------------------------------ disk full

def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))   # like a full disk: writes past 100 bytes fail


def test_disk_full_fails_visibly_leaves_no_partial_file_and_is_retryable(tmp_path, rel_redis, dns_server, procs):
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=rel_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, TASK_MAX_RETRIES=1,
                    RETRY_BASE_DELAY="1s", WHOIS_MIN_SCORE=1000, WHOIS_REFERRAL_SERVER="127.0.0.1:9")
    store = RedisStore(rel_redis)
    procs.append(w := start_worker(env, tmp_path, "all", "normal", concurrency=4))
    produce_file(env, ["acme-widgets.example"], tmp_path)
    wait_for(lambda: "acme-widgets.example" in read_documents(out), timeout=30, message="the first document")
    first = (out / "acme-widgets.example" / "acme-widgets.example.json").read_bytes()
    assert len(first) > 100
    w.stop()

    procs.append(full := start_worker(env, tmp_path, "all", "disk-full", concurrency=4, preexec_fn=_limit_file_size))
    store.forget(["acme-widgets.example"])                   # seen again: its document is rewritten
    names = ["acme-widgets.example", "portal.example.org"]
    produce_file(env, names, tmp_path)
    wait_for(store.list_failed, timeout=30, message="the save batch in the failed store")
    [entry] = store.list_failed()
    assert entry["stage"] == "save" and sorted(entry["domains"]) == sorted(names)
    assert "File too large" in entry["exception"] or "EFBIG" in entry["exception"], entry["exception"]
    # The old document is intact, no half-written new one, no temporary file left behind.
    assert (out / "acme-widgets.example" / "acme-widgets.example.json").read_bytes() == first
    assert "portal.example.org" not in read_documents(out)
    assert no_temp_files(out) == []
    full.stop()

    procs.append(start_worker(env, tmp_path, "all", "disk-ok", concurrency=4))
    r = run_scout(["failed", "retry", entry["id"]], env, timeout=60)
    assert r.returncode == 0 and entry["id"] in r.stdout, r.stderr
    wait_for(lambda: set(read_documents(out)) == set(names), timeout=30, message="documents after the retry")
    docs = read_documents(out)
    validate_documents(docs)
    assert docs["acme-widgets.example"]["seen_count"] == 2
    assert store.list_failed() == [] and no_temp_files(out) == []
    assert store.in_flight(time.time()) == (0, 0)     # failed, retried by hand, saved: settled each time


# ------------------------------------------------------------------ graceful stops

def test_sigterm_producer_enqueues_what_it_buffered(tmp_path, rel_redis, dns_server, procs):
    """Batches wait up to BATCH_LINGER=60s in the producer: SIGTERM sends them before it exits."""
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=rel_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, BATCH_SIZE=1000,
                    BATCH_LINGER="60s", WHOIS_MIN_SCORE=1000, WHOIS_REFERRAL_SERVER="127.0.0.1:9",
                    STATS_INTERVAL="200ms")
    procs.append(start_worker(env, tmp_path, "all", "all", concurrency=8))
    names = [f"t{i}.preview-pages.example" for i in range(60)]
    server = ReplayServer(recording(tmp_path / "s.jsonl", names), rate=100).start()
    producer = scout_proc(["produce", "--url", server.url("/domains-only")], env, tmp_path / "producer.log")
    with reading(producer, server):
        read_everything(tmp_path / "producer.log", len(names))
        assert not read_documents(out)                      # all still buffered in the producer
        stdout, _ = stop_gracefully(producer)
    assert producer.returncode == 0
    counts = json.loads(stdout.strip().splitlines()[-1])
    assert counts["unique"] == counts["enqueued"] == len(names)
    wait_for(lambda: set(read_documents(out)) == set(names), timeout=60, message="buffered domains saved")


def test_sigterm_scout_run_saves_what_it_buffered_without_a_broker(tmp_path, dns_server, rdap):
    """`scout run` (embedded: in-process broker and workers, no Redis) holds a stream's domains in its
    micro-batch (BATCH_LINGER=60s); SIGTERM publishes them and lets its workers save every one before it
    exits, WHOIS answers included."""
    out = tmp_path / "out"
    env = scout_env(OUTPUT_DIR=out, DNS_SERVER=dns_server, BATCH_SIZE=1000, BATCH_LINGER="60s",
                    STATS_INTERVAL="200ms", **rdap_bootstrap(tmp_path, rdap.base))
    names = [f"e{i}.preview-pages.example" for i in range(60)] + SERVED
    server = ReplayServer(recording(tmp_path / "s.jsonl", names), rate=100).start()
    proc = scout_proc(["run", "--url", server.url("/domains-only")], env, tmp_path / "run.log")
    with reading(proc, server):
        read_everything(tmp_path / "run.log", len(names))
        assert not read_documents(out)                      # all still in the producer's batch
        stop_gracefully(proc, 90)
    assert proc.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
    docs = read_documents(out)
    assert set(docs) == set(names)
    validate_documents(docs)
    assert docs["acme-widgets.example"]["a_records"] == EXPECTED["acme-widgets.example"]["a_records"]
    assert all(d["domain_whois_parsed"]["status"] == "not_found" for d in docs.values())


def test_sigterm_worker_finishes_its_task_and_gives_back_the_rest(tmp_path, rel_redis, dns_server, procs):
    """A save worker stopped with SIGTERM mid-task finishes that task (warm shutdown) and hands back the
    messages it had reserved at once (not after the visibility timeout)."""
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=rel_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, BATCH_SIZE=5,
                    VISIBILITY_TIMEOUT="1h", WHOIS_MIN_SCORE=1000, WHOIS_REFERRAL_SERVER="127.0.0.1:9")
    names = [f"g{i}.preview-pages.example" for i in range(15)]
    locks = lock_roots(out, ["preview-pages.example"])
    try:
        procs.append(start_worker(env, tmp_path, "dns", "dns"))
        procs.append(start_worker(env, tmp_path, "whois", "whois"))
        procs.append(save := start_worker(env, tmp_path, "save", "save-1", concurrency=1))
        produce_file(env, names, tmp_path)
        wait_for(lambda: unacked_by_queue(rel_redis).get("save", 0) >= 1, timeout=30, message="a save task running")
        save.send(signal.SIGTERM)
        time.sleep(1.5)
        assert save.proc.poll() is None                     # waits for the task it is running
    finally:
        unlock(locks)
    assert save.proc.wait(30) == 0
    procs.append(start_worker(env, tmp_path, "save", "save-2"))
    wait_for(lambda: set(read_documents(out)) == set(names), timeout=30,
             message="every batch saved well before the 1 h visibility timeout")
    assert RedisStore(rel_redis).list_failed() == []


# ------------------------------------------------------------------ backpressure

def test_backpressure_drops_without_marking_seen_and_picks_up_later(tmp_path, rel_redis, dns_server, procs):
    """No dns worker and MAX_BACKLOG=20: the producer stops enqueueing, counts the rest as dropped, does
    not mark them seen and says so once a minute; streamed again with workers up, they are all saved."""
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=rel_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, BATCH_SIZE=5, MAX_BACKLOG=20,
                    WHOIS_MIN_SCORE=1000, WHOIS_REFERRAL_SERVER="127.0.0.1:9")
    names = [f"b{i}.preview-pages.example" for i in range(200)]
    rec = recording(tmp_path / "s.jsonl", names)

    store = RedisStore(rel_redis)

    def stream(env, log):
        # Stopped once the producer has read every name (its counters reach the store every 5 s), not
        # a second after the server sent them: on a loaded machine the producer may still be reading.
        names_before = store.counters().get("producer:names", 0)
        server = ReplayServer(rec, rate=20).start()
        producer = scout_proc(["produce", "--url", server.url("/domains-only")], env, log)
        with reading(producer, server):
            wait_for(lambda: store.counters().get("producer:names", 0) - names_before >= len(names), timeout=90,
                     message="the producer read the whole stream")
            stdout, _ = stop_gracefully(producer)
        assert producer.returncode == 0, log.read_text()[-3000:]
        return json.loads(stdout.strip().splitlines()[-1])

    counts = stream(env, tmp_path / "p1.log")
    # The backlog, plus what arrived before the next backlog check (every 0.5 s, 100 names/s here: about
    # 70 on a quiet machine; a loaded one checks later, so the bound is only "well before the end").
    assert counts["dropped_backlog"] > 100 and 20 <= counts["enqueued"] < 100
    assert counts["enqueued"] + counts["dropped_backlog"] == len(names)
    assert (tmp_path / "p1.log").read_text().count("above MAX_BACKLOG") == 1
    import redis

    seen = {k.decode().split(":", 2)[2] for k in redis.Redis.from_url(rel_redis).scan_iter("scout:seen:*")}
    assert len(seen) == counts["enqueued"]                  # the dropped ones are not marked seen

    procs.append(start_worker(env, tmp_path, "all", "all", concurrency=8))
    wait_for(lambda: set(read_documents(out)) == seen, timeout=60, message="the backlog saved")
    counts2 = stream(dict(env, MAX_BACKLOG="100000"), tmp_path / "p2.log")
    assert counts2["enqueued"] == len(names) - len(seen)    # exactly the dropped ones come back
    wait_for(lambda: set(read_documents(out)) == set(names), timeout=60, message="every domain saved")

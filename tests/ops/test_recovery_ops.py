"""Issue 16, recovery: configuration refused at start (RabbitMQ without REDIS_URL, an OUTPUT_DIR that
cannot be written), `scout run` saying when no worker consumes a queue, `scout stats` showing consumers
and message ages, worker leases and the re-send of a dead worker's batches, stall detection and the
supervisor of `scout worker`. Real Redis, real Celery workers, real processes."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from scout.celery import configure
from scout.config import load_settings
from scout.ops.supervisor import CRASH_LOOP, STALL_EXIT, supervise
from scout.ops.watchdog import Watchdog
from scout.producer.ledger import resend_dead_holds
from scout.producer.sinks import queue_lengths
from scout.stages.chain import publish_chain
from scout.store import RedisStore
from tests.conftest import ROOT, emptied_redis, redis_db, run_scout, scout_env, wait_for
from tests.support.feed import recording

NAMES = ["acme-widgets.example", "portal.example.org", "cdn.example.net"]


@pytest.fixture
def rec_redis():
    yield from emptied_redis(redis_db(14))


# ------------------------------------------------------------------ refused at start

def test_rabbitmq_without_redis_url_is_refused_naming_redis_url(tmp_path):
    rec = recording(tmp_path / "rec.jsonl", NAMES)
    env = scout_env(BROKER_URL="amqp://guest:guest@127.0.0.1:5672//", OUTPUT_DIR=tmp_path / "out")
    for args in (["worker", "dns"], ["produce", "--source", str(rec)], ["run", "--source", str(rec)], ["stats"]):
        r = run_scout(args, env, timeout=60)
        assert r.returncode == 2, (args, r.stderr[-2000:])
        assert "REDIS_URL" in r.stderr and "configuration error" in r.stderr, r.stderr[-2000:]
    s = load_settings({"BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//", "REDIS_URL": redis_db(14)}, None)
    assert s.redis_url == redis_db(14)                          # with a shared store: accepted


def test_output_dir_that_cannot_be_written_is_exit_2_naming_it(tmp_path, rec_redis):
    rec = recording(tmp_path / "rec.jsonl", NAMES)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "below"):
        for broker, args in (({}, ["run", "--source", str(rec)]),
                             ({"BROKER_URL": rec_redis}, ["run", "--workers", "--source", str(rec)]),
                             ({"BROKER_URL": rec_redis}, ["worker", "save"])):
            r = run_scout(args, scout_env(OUTPUT_DIR=out, **broker), timeout=60)
            assert r.returncode == 2, (out, args, r.stdout[-1000:], r.stderr[-2000:])
            assert "OUTPUT_DIR" in r.stderr and str(out) in r.stderr, r.stderr[-2000:]
    assert blocker.read_text() == "not a folder"
    created = tmp_path / "new" / "deeper"          # a folder that does not exist yet is created
    r = run_scout(["run", "--source", str(rec)], scout_env(OUTPUT_DIR=created, DNS_SERVER="127.0.0.1:9",
                                                            DNS_TIMEOUT="100ms", DNS_RETRIES="0",
                                                            TASK_MAX_RETRIES="0"), timeout=120)
    assert r.returncode == 0 and created.is_dir(), r.stderr[-2000:]


def test_a_save_failure_mid_run_is_logged_reaches_the_failed_store_and_ends_the_run(tmp_path, rec_redis,
                                                                                   dns_server):
    """--workers on Redis; the documents' folder of one root is a file: the save retries (each retry in
    the log), lands in the failed store after TASK_MAX_RETRIES and the run ends with its summary."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "example.org").write_text("in the way")
    env = scout_env(BROKER_URL=rec_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, TASK_MAX_RETRIES=1,
                    RETRY_BASE_DELAY="1s", WHOIS_MIN_SCORE=1000)
    r = run_scout(["run", "--workers", "--source", str(recording(tmp_path / "rec.jsonl", NAMES, 1)),
                   "--stall-timeout", "120"], env, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["unique"] == 3 and summary["failed"] >= 1 and summary["saved"] + summary["failed"] == 3
    assert "scout.save failed (try 1 of 2), retrying: NotADirectoryError" in r.stderr
    assert "failed after their retries" in r.stderr
    failed = RedisStore(rec_redis).list_failed()
    assert failed and {e["stage"] for e in failed} == {"save"}
    assert "portal.example.org" in {d for e in failed for d in e["domains"]}


# ------------------------------------------------------------------ no consumer, stats

def test_run_without_workers_warns_within_seconds_and_stats_show_consumers_and_age(tmp_path, rec_redis,
                                                                                  dns_server, workers):
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=rec_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, WHOIS_MIN_SCORE=1000)
    rec = recording(tmp_path / "rec.jsonl", NAMES)
    err = tmp_path / "run.err"
    run = subprocess.Popen([sys.executable, "-m", "scout", "run", "--source", str(rec)], env=env,
                           cwd=str(ROOT), stdout=subprocess.PIPE,
                           stderr=open(err, "w"), text=True)
    try:
        started = time.monotonic()
        wait_for(lambda: "no worker consumes queue dns, whois, save, whois.default" in err.read_text(),
                 timeout=60, message="the warning about queues without a worker")
        assert time.monotonic() - started < 45          # seconds, not the 600 s stall timeout
        stats = json.loads(_ok(["stats", "--json"], env))
        assert stats["queues"]["dns"] == 1 and stats["consumers"]["dns"] == 0
        assert 0 <= stats["oldest_message_age"]["dns"] < 120 and stats["oldest_message_age"]["save"] is None
        text = _ok(["stats"], env)
        assert "dns: consumers=0 oldest=" in text

        workers(env).start("all", concurrency=4, name="late")
        assert run.wait(120) == 0
        assert json.loads(run.stdout.read().strip().splitlines()[-1])["saved"] == 3
    finally:
        if run.poll() is None:
            run.kill()
    stats = json.loads(_ok(["stats", "--json"], env))
    assert stats["consumers"] == {"dns": 1, "whois": 1, "save": 1, "whois.default": 1}
    assert stats["oldest_message_age"]["dns"] is None


def _ok(args, env) -> str:
    r = run_scout(args, env, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


# ------------------------------------------------------------------ leases

def test_batches_of_a_dead_lease_are_sent_again_from_the_ledger(rec_redis):
    s = load_settings({"BROKER_URL": rec_redis, "WORKER_LEASE": "1s"}, None)
    app = configure(s)
    store = RedisStore(rec_redis)
    items = [{"d": n, "r": n, "seen": time.time()} for n in NAMES]
    publish_chain(items, s, store)                              # in the ledger, one dns message
    batch = items[0]["b"]
    app.connection_for_write().default_channel.queue_purge("dns")   # the message a worker took
    live = Watchdog(s, store, app, supervised=False)
    dead = Watchdog(s, store, app, supervised=False)
    for w in (live, dead):
        w.queues.add("dns")
        w.beat()
    dead.task_started("scout.dns", ([dict(it) for it in items],))
    assert store.dead_holds() == {}
    assert resend_dead_holds(s, store) == 0                     # alive: nothing to send
    store.drop_lease(dead.id)                                   # its lease expires: SIGKILL, host gone
    assert store.dead_holds() == {batch: dead.id}
    assert resend_dead_holds(s, store) == 3
    assert resend_dead_holds(s, store) == 0                     # sent once
    assert queue_lengths(app, ["dns"]) == {"dns": 1}
    assert store.counters()["lease_resent"] == 3
    in_flight, _ = store.in_flight(time.time())
    assert in_flight == 3 and store.ledger_items(batch) is None   # a new batch replaces the old one
    # A task that ended lets its batch go; a retry keeps it.
    live.task_started("scout.save", ([{"d": "x.example", "b": "B1.1"}],))
    live.task_ended("scout.save", ([{"d": "x.example", "b": "B1.1"}],), "RETRY")
    store.drop_lease(live.id)
    assert "B1.1" in store.dead_holds()
    live.beat()
    live.task_ended("scout.save", ([{"d": "x.example", "b": "B1.1"}],), "SUCCESS")
    # A DNS step that re-published its unanswered domains as a new batch (countdown): that one is held.
    items = [{"d": "y.example", "b": "B2.1"}]
    live.task_started("scout.dns", (items,), "t-2")
    items[0]["b"] = "B3.1"
    live.task_ended("scout.dns", (items,), "SUCCESS", "t-2")
    store.drop_lease(live.id)
    assert "B1.1" not in store.dead_holds() and "B2.1" not in store.dead_holds()
    assert store.dead_holds()["B3.1"] == live.id


# ------------------------------------------------------------------ stall, supervisor

def test_stall_is_detected_only_while_the_queue_waits(rec_redis):
    s = load_settings({"BROKER_URL": rec_redis, "WORKER_STALL_TIMEOUT": "1s"}, None)
    app = configure(s)
    exits: list[int] = []
    w = Watchdog(s, RedisStore(rec_redis), app, supervised=True, exit_fn=exits.append)
    w.queues.add("dns")
    w.last_activity -= 5
    assert not w.check_stall() and exits == []                  # idle, but nothing waits
    publish_chain([{"d": "a.example", "r": "a.example", "seen": 1.0}], s, RedisStore(rec_redis))
    assert w.check_stall() and exits == [STALL_EXIT]
    w.task_started("scout.lookup_domain_whois", ("a.example", None))   # consuming again
    assert not w.check_stall() and exits == [STALL_EXIT]


def test_supervisor_restarts_a_stalled_or_crashed_worker_and_gives_up_on_a_crash_loop(tmp_path):
    runs = tmp_path / "runs"
    child = (f"import os,sys; p={str(runs)!r}; n=len(open(p).read()) if os.path.exists(p) else 0; "
             f"open(p,'a').write('x'); assert os.environ['SCOUT_SUPERVISED'] == '1'; "
             f"sys.exit([{STALL_EXIT}, 1, {STALL_EXIT}][n] if n < 3 else 0)")
    assert supervise([sys.executable, "-c", child], min_delay=0.05, max_delay=0.1) == 0
    assert runs.read_text() == "xxxx"                 # stalled, crashed, stalled: restarted each time
    runs.unlink()
    crash = f"import sys; open({str(runs)!r}, 'a').write('x'); sys.exit(3)"
    assert supervise([sys.executable, "-c", crash], min_delay=0.05, max_delay=0.1) == 3
    assert runs.read_text() == "x" * CRASH_LOOP


def test_scout_worker_restarts_its_celery_worker_when_it_stops_taking_work(tmp_path, rec_redis):
    """A real `scout worker dns` with one thread, stuck in a DNS batch (a server that never answers) while
    the next batch waits in the queue: its watchdog exits 75 after WORKER_STALL_TIMEOUT, the supervisor
    starts Celery again, and the batch the stuck worker held is re-sent from the ledger."""
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blackhole.bind(("127.0.0.1", 0))
    env = scout_env(BROKER_URL=rec_redis, OUTPUT_DIR=tmp_path / "out", BATCH_SIZE=1,
                    DNS_SERVER=f"127.0.0.1:{blackhole.getsockname()[1]}", DNS_TIMEOUT="60s", DNS_RETRIES=0,
                    WORKER_STALL_TIMEOUT="5s", WORKER_LEASE="3s")
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "scout", "worker", "dns", "--", "-c", "1"], env=env,
                              cwd=str(ROOT), stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_for(lambda: b" ready." in log.read_bytes(), timeout=60, message="the worker ready")
        r = run_scout(["produce", "--source", str(recording(tmp_path / "rec.jsonl", NAMES[:2], 1))], env)
        assert r.returncode == 0, r.stderr[-2000:]
        wait_for(lambda: b"worker stalled" in log.read_bytes() and b"starting it again" in log.read_bytes()
                 and log.read_bytes().count(b" ready.") >= 2, timeout=120,
                 message="the stall seen, the worker started again")
        assert worker.poll() is None                                  # `scout worker` itself lives on
        wait_for(lambda: RedisStore(rec_redis).counters().get("lease_resent", 0) >= 1, timeout=60,
                 message="the stuck worker's batch re-sent")
    finally:
        worker.terminate()                       # the supervisor passes it on to Celery
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)   # its session: the supervisor and Celery
            worker.wait(10)
        blackhole.close()

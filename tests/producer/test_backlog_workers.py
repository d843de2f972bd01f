"""Issue 16, bounded, end to end: with real `scout worker` processes for dns and whois but none for save,
the chain's batches pile up in `save` while `dns` stays empty; the producer (a real `scout produce` on a
replay server) still stops enqueueing at MAX_BACKLOG, counts the rest as dropped and does not mark them
seen. Once a save worker runs, everything enqueued is saved. Real Redis (db 14), nsd, celery workers.
"""
from __future__ import annotations

import json
import signal
import time

import pytest

from scout.sources.replay import ReplayServer
from tests.conftest import emptied_redis, read_documents, redis_db, scout_env, wait_for
from tests.servers.processes import reading, stop_gracefully
from tests.support.feed import recording
from tests.support.reliability import scout_proc, start_worker

URL = redis_db(14)


@pytest.fixture
def redis14():
    yield from emptied_redis(URL)


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.stop(signal.SIGKILL, timeout=10)


def test_backlog_in_save_holds_the_producer_back(tmp_path, redis14, dns_server, procs):
    import redis

    from scout.queues import queue_lengths
    from tests.support.brokers import configured_app

    out = tmp_path / "out"
    env = scout_env(BROKER_URL=URL, OUTPUT_DIR=out, DNS_SERVER=dns_server, BATCH_SIZE=5, MAX_BACKLOG=30,
                    WHOIS_MIN_SCORE=1000, WHOIS_REFERRAL_SERVER="127.0.0.1:9")
    procs.append(start_worker(env, tmp_path, "dns", "dns"))
    procs.append(start_worker(env, tmp_path, "whois", "whois"))
    names = [f"k{i}.preview-pages.example" for i in range(200)]
    server = ReplayServer(recording(tmp_path / "s.jsonl", names), rate=20).start()
    producer = scout_proc(["produce", "--url", server.url("/domains-only")], env, tmp_path / "p.log")
    with reading(producer, server):
        wait_for(lambda: server.frames_sent >= len(names) // 5, timeout=90, message="the stream sent")
        time.sleep(1.0)
        stdout, _ = stop_gracefully(producer)
    assert producer.returncode == 0, (tmp_path / "p.log").read_text()[-3000:]
    counts = json.loads(stdout.strip().splitlines()[-1])
    assert counts["dropped_backlog"] > 50 and counts["enqueued"] + counts["dropped_backlog"] == len(names)
    log = (tmp_path / "p.log").read_text()
    assert "above MAX_BACKLOG" in log and "save=" in log
    with configured_app({"BROKER_URL": URL}) as (app, _):
        wait_for(lambda: queue_lengths(app, ["dns", "whois"]) == {"dns": 0, "whois": 0}, timeout=60,
                 message="dns and whois drained into save")
        depths = queue_lengths(app, ["save"])
    assert depths["save"] * 5 >= 30                          # the backlog the producer saw was in `save`
    seen = {k.decode().split(":", 2)[2] for k in redis.Redis.from_url(URL).scan_iter("scout:seen:*")}
    assert len(seen) == counts["enqueued"]                   # dropped names are not marked seen

    procs.append(start_worker(env, tmp_path, "save", "save"))
    wait_for(lambda: set(read_documents(out)) == seen, timeout=90, message="everything enqueued saved")

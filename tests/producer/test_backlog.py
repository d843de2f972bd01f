"""Issue 16, bounded: backpressure judges the backlog by every queue of the chain (dns, whois, save with
apply_whois, the WHOIS lookup queues), not only `dns`; the NATS bridge fetches only under MAX_BACKLOG and
the ledger sweeper pauses over it.

Real parts only: this test run's Redis (db 14, broker and store), a private RabbitMQ vhost, the machine's
NATS (a stream of the test's own). Messages are published by the real publishing code with no worker
consuming, so they stay where they are put.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest

from tests.conftest import emptied_redis, need_service, redis_db, wait_for
from tests.support.brokers import configured_app, rabbit_vhost

BACKLOG_REDIS = redis_db(14)
SHARED_NATS = "nats://127.0.0.1:4222"


@pytest.fixture
def redis14():
    yield from emptied_redis(BACKLOG_REDIS)


def items(n: int, tag: str) -> list[dict]:
    return [{"d": f"{tag}{i}.preview-pages.example", "r": "preview-pages.example", "seen": 1.0} for i in range(n)]


def fill(app, s, store, **per_stage) -> None:
    """Publish chains starting at each named stage (dns/whois/save), and lookups (`lookups=n`)."""
    from scout.stages.chain import publish_chain

    for stage in ("dns", "whois", "save"):
        for k in range(per_stage.get(stage, 0)):
            publish_chain(items(3, f"{stage}{k}-"), s, store, start=stage)
    for k in range(per_stage.get("lookups", 0)):
        app.send_task("scout.lookup_domain_whois", (f"root{k}.example", None), queue="whois.default",
                      routing_key="whois.default")


def purge(app, *names) -> None:
    with app.connection_for_write() as conn:
        for name in names:
            conn.default_channel.queue_purge(name)


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_queue_depths_count_every_queue_of_the_chain(kind, redis14):
    from scout.queues import QueueDepths
    from scout.store import RedisStore

    if kind == "rabbitmq":
        need_service("RabbitMQ", 5672)
    with rabbit_vhost("backlog") if kind == "rabbitmq" else _nothing(BACKLOG_REDIS) as broker:
        with configured_app({"BROKER_URL": broker, "REDIS_URL": BACKLOG_REDIS, "BATCH_SIZE": "50"}) as (app, s):
            store = RedisStore(BACKLOG_REDIS)
            depths = QueueDepths(app, s, every=0)
            assert depths.domains() == 0
            fill(app, s, store, dns=1, whois=2, save=3, lookups=4)
            want = {"dns": 1, "whois": 2, "save": 3, "whois.default": 4}
            wait_for(lambda: depths.read() == want, timeout=30, message="queue depths")
            assert depths.domains() == (1 + 2 + 3) * 50 + 4
            assert depths.lookups() == 4
            purge(app, "save", "whois.default")
            assert depths.domains() == 3 * 50 and depths.lookups() == 0


class _nothing:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False


def test_producer_backpressure_sees_a_backlog_after_dns(redis14):
    """Batches stuck before `save` (no save worker) hold the producer back although `dns` is empty."""
    from scout.counters import Counters
    from scout.producer.sinks import CelerySink
    from scout.store import RedisStore

    env = {"BROKER_URL": BACKLOG_REDIS, "BATCH_SIZE": "100", "MAX_BACKLOG": "250"}
    with configured_app(env) as (app, s):
        store = RedisStore(BACKLOG_REDIS)
        sink = CelerySink(s, store, Counters(), app=app, backlog_check_every=0)
        assert not sink.backlogged()
        fill(app, s, store, save=2, lookups=10)
        assert not sink.backlogged()            # 2 x 100 + 10 < 250
        fill(app, s, store, whois=1)
        assert sink.backlogged()                # 3 x 100 + 10 >= 250, with `dns` empty
        assert sink.backlog.depths.last["dns"] == 0
        purge(app, "whois", "save")
        assert not sink.backlogged()


def test_ledger_sweep_pauses_while_the_backlog_is_over(redis14):
    """An overdue ledger entry is not re-sent into a full chain; once the queues drain it is."""
    from scout.producer.backlog import Backlog
    from scout.producer.ledger import Sweeper
    from scout.queues import queue_lengths
    from scout.store import RedisStore

    env = {"BROKER_URL": BACKLOG_REDIS, "BATCH_SIZE": "10", "MAX_BACKLOG": "20", "LEDGER_TIMEOUT": "4s"}
    with configured_app(env) as (app, s):
        store = RedisStore(BACKLOG_REDIS)
        store.track("lost1.3", items(3, "lost-"), time.time() - 1)     # a batch the broker lost
        fill(app, s, store, save=2)
        sweeper = Sweeper(s, store, Backlog(s, app, every=0))
        sweeper._next = 0                                              # due now
        assert sweeper.maybe_sweep() == 0
        assert store.counters().get("ledger_sweeps_paused") == 1
        assert queue_lengths(app, ["dns"])["dns"] == 0
        assert store.in_flight(time.time())[1] >= 3                    # still overdue, still tracked
        purge(app, "save")
        store.settle([b.decode() for b in store.r.zrange("scout:ledger", 0, -1) if not b.startswith(b"lost")])
        sweeper._next = 0
        assert sweeper.maybe_sweep() == 3
        assert queue_lengths(app, ["dns"])["dns"] == 1


# ------------------------------------------------------------------ the NATS bridge

def nats_call(fn):
    import nats

    async def main():
        nc = await nats.connect(SHARED_NATS, connect_timeout=2, max_reconnect_attempts=0)
        try:
            return await fn(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


@pytest.fixture
def nats_stream():
    need_service("NATS", 4222)
    tag = uuid.uuid4().hex[:10]
    name, subject = f"SCOUTBACKLOG_{tag.upper()}", f"scoutbacklog.{tag}.domains"
    yield {"NATS_URL": SHARED_NATS, "NATS_STREAM": name, "NATS_SUBJECT": subject}

    async def delete(js):
        try:
            await js.delete_stream(name)
        except Exception:
            pass

    nats_call(delete)


def test_bridge_fetches_only_under_max_backlog(redis14, nats_stream):
    from scout.counters import Counters
    from scout.producer.bridge import DURABLE, Bridge
    from scout.producer.nats_sink import ensure_stream
    from scout.queues import queue_lengths
    from scout.store import RedisStore

    env = {"BROKER_URL": BACKLOG_REDIS, "SINK": "nats", "BATCH_SIZE": "10", "MAX_BACKLOG": "20",
           "BATCH_LINGER": "50ms", **nats_stream}
    with configured_app(env) as (app, s):
        store = RedisStore(BACKLOG_REDIS)
        fill(app, s, store, save=2)                              # 2 x 10 >= MAX_BACKLOG, nothing in dns

        async def publish(js):
            await ensure_stream(js, s)
            for it in items(30, "nats-"):
                await js.publish(s.nats_subject, json.dumps(it).encode())
        nats_call(publish)

        counters, stop = Counters(), threading.Event()
        thread = Bridge(s, counters, store=store).start_thread(stop)
        try:
            wait_for(lambda: counters.get("bridge_paused_backlog") >= 3, timeout=60, message="bridge paused")
            assert counters.get("bridge_messages") == 0 and queue_lengths(app, ["dns"])["dns"] == 0

            purge(app, "save")
            wait_for(lambda: counters.get("enqueued") == 30, timeout=60, message="bridge resumed")
            assert queue_lengths(app, ["dns"])["dns"] >= 2
        finally:
            stop.set()
            thread.join(30)

        async def pending(js):
            return await js.consumer_info(s.nats_stream, DURABLE)
        info = nats_call(pending)
        assert info.num_pending == 0

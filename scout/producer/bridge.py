"""The NATS bridge (`scout bridge`, and `scout run` with SINK=nats): NATS JetStream -> Celery chains.

A durable pull consumer (DURABLE, shared by every bridge on the stream, so several bridges split the
messages instead of each getting all of them) fetches up to BATCH_SIZE messages, waiting at most
BATCH_LINGER for a batch to fill, turns them into one chain (scout.stages.chain) and
acknowledges them only once the broker accepted the chain. A message never acknowledged (bridge
killed, broker away) comes back after NATS_ACK_WAIT: a crash between enqueue and ack may enqueue a
domain twice (the save stage is idempotent), never lose it. While the broker refuses a chain the
bridge keeps the batch, tells JetStream it is still working on it, and retries with backoff.
Backpressure: the bridge fetches only while the chain's queues hold fewer than MAX_BACKLOG domains
(scout.producer.backlog); above it the messages wait in JetStream, which is made for keeping them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

from scout.counters import Counters
from scout.producer.backlog import Backlog
from scout.producer.ledger import Sweeper
from scout.producer.nats_sink import connect, ensure_stream
from scout.stages.chain import publish_chain
from scout.store import get_store

log = logging.getLogger(__name__)

DURABLE = "scout-bridge"
IDLE_FETCH = 1.0            # seconds one empty fetch waits (also the stop latency)
MAX_ACK_PENDING = 20000


def consumer_config(s):
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    return ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                          filter_subject=s.nats_subject, ack_wait=s.nats_ack_wait, max_deliver=-1,
                          max_ack_pending=MAX_ACK_PENDING)


def decode(msg) -> dict | None:
    """A message's item, or None when it is not one (bad JSON, no domain)."""
    try:
        item = json.loads(msg.data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(item, dict) or not isinstance(item.get("d"), str) or not isinstance(item.get("r"), str):
        return None
    return item


class Bridge:
    def __init__(self, settings, counters: Counters | None = None, enqueue=None, store=None, backlog=None):
        self.s = settings
        self.counters = counters or Counters()
        self.store = store or get_store()
        self._enqueue = enqueue or self._apply_chain
        self.backlog = backlog or Backlog(settings, who="bridge (messages wait in JetStream)")
        self._sweeper = Sweeper(settings, self.store, self.backlog)

    def _apply_chain(self, items: list[dict]) -> None:
        publish_chain(items, self.s, self.store)

    # -------------------------------------------------------------- running
    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set; finishes (enqueues and acks) the batch in hand first."""
        asyncio.run(self._main(stop))

    def start_thread(self, stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(stop,), name="nats-bridge", daemon=True)
        t.start()
        return t

    async def _main(self, stop: threading.Event) -> None:
        c = self.counters
        nc = await connect(self.s, "scout-bridge", stop.is_set, lambda ev: c.incr("nats_" + ev), quiet=stop.is_set)
        if nc is None:
            return
        try:
            js = nc.jetstream(timeout=10)
            sub = None
            delay = 0.5
            while sub is None and not stop.is_set():
                try:
                    await ensure_stream(js, self.s)
                    sub = await js.pull_subscribe(self.s.nats_subject, durable=DURABLE, stream=self.s.nats_stream,
                                                  config=consumer_config(self.s))
                except Exception as exc:
                    log.warning("cannot bind consumer %s on stream %s (%s); retrying in %.1f s",
                                DURABLE, self.s.nats_stream, exc or type(exc).__name__, delay)
                    await asyncio.sleep(delay)
                    delay = min(10.0, delay * 2)
            if sub is None:
                return
            log.info("bridge: consuming %s from stream %s as %s", self.s.nats_subject, self.s.nats_stream, DURABLE)
            await self._loop(sub, stop)
        finally:
            try:
                await asyncio.wait_for(nc.close(), 5)
            except Exception:
                pass

    async def _fetch_batch(self, sub, stop: threading.Event) -> list:
        import nats.errors

        size, linger = self.s.batch_size, self.s.batch_linger
        try:
            msgs = await sub.fetch(size, timeout=IDLE_FETCH)
        except (asyncio.TimeoutError, nats.errors.TimeoutError):
            return []
        deadline = time.monotonic() + linger
        while len(msgs) < size and not stop.is_set():
            left = deadline - time.monotonic()
            if left < 0.01:
                break
            try:
                msgs += await sub.fetch(size - len(msgs), timeout=left)
            except (asyncio.TimeoutError, nats.errors.TimeoutError):
                break
        return msgs

    async def _loop(self, sub, stop: threading.Event) -> None:
        c = self.counters
        last_summary, last = time.monotonic(), c.snapshot()
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if await loop.run_in_executor(None, self.backlog.over):
                c.incr("bridge_paused_backlog")
                await asyncio.sleep(IDLE_FETCH)
                continue
            try:
                msgs = await self._fetch_batch(sub, stop)
            except Exception as exc:  # disconnected, server restarting: the client reconnects by itself
                c.incr("bridge_fetch_errors")
                log.debug("fetch failed: %s", exc)
                await asyncio.sleep(0.5)
                msgs = []
            if msgs:
                await self._handle(msgs, stop)
            if self._sweeper.due():  # a thread hop (it talks to Redis and the broker) once a minute, not per batch
                await loop.run_in_executor(None, self._sweeper.maybe_sweep)
            now = time.monotonic()
            if self.s.stats_interval and now - last_summary >= self.s.stats_interval:
                snap = c.snapshot()
                log.info("bridge: %s", summary_line(last, snap, now - last_summary))
                last_summary, last = now, snap

    async def _handle(self, msgs: list, stop: threading.Event) -> None:
        c = self.counters
        items, good = [], []
        for m in msgs:
            item = decode(m)
            if item is None:
                c.incr("bridge_bad_messages")
                log.warning("dropping a message that is not a domain item: %r", m.data[:200])
                await _quiet(m.term())
                continue
            try:
                if m.metadata.num_delivered > 1:
                    c.incr("bridge_redelivered")
            except Exception:
                pass
            items.append(item)
            good.append(m)
        c.incr("bridge_messages", len(msgs))
        if not items:
            return
        loop = asyncio.get_running_loop()
        delay = 0.5
        while True:
            try:
                await loop.run_in_executor(None, self._enqueue, items)
                break
            except Exception as exc:
                c.incr("bridge_enqueue_errors")
                if stop.is_set():
                    # Give them back now rather than after the ack wait: another bridge takes them.
                    log.warning("broker unavailable at shutdown (%s); returning %d messages", exc, len(good))
                    await asyncio.gather(*(_quiet(m.nak()) for m in good))
                    return
                log.warning("broker unavailable (%s); holding %d domains, retrying in %.1f s",
                            exc, len(items), delay)
                await asyncio.gather(*(_quiet(m.in_progress()) for m in good))
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
        c.incr("enqueued", len(items))
        c.incr("bridge_batches")
        results = await asyncio.gather(*(m.ack_sync(timeout=5) for m in good), return_exceptions=True)
        errors = sum(1 for r in results if isinstance(r, BaseException))
        if errors:
            # Enqueued but not acknowledged: JetStream redelivers them later (a duplicate, not a loss).
            c.incr("bridge_ack_errors", errors)
            log.warning("%d acknowledgements failed; those domains may be enqueued again", errors)
        c.incr("bridge_acked", len(good) - errors)


async def _quiet(coro) -> None:
    try:
        await coro
    except Exception:
        pass


def summary_line(before: dict, after: dict, seconds: float) -> str:
    def d(k):
        return after.get(k, 0) - before.get(k, 0)

    return (f"{d('enqueued') / max(seconds, 1e-9):.0f} domains/s; totals messages={after.get('bridge_messages', 0)} "
            f"enqueued={after.get('enqueued', 0)} batches={after.get('bridge_batches', 0)} "
            f"redelivered={after.get('bridge_redelivered', 0)} enqueue_errors={after.get('bridge_enqueue_errors', 0)} "
            f"ack_errors={after.get('bridge_ack_errors', 0)} bad={after.get('bridge_bad_messages', 0)}")

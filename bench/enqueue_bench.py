"""Enqueueing: domains accepted per second by CelerySink (micro-batched chains onto a Redis broker, each
domain written to the in-flight ledger first, as in production), Redis memory per queued chain, against
raw redis-py LPUSH of the very same message bytes."""
from __future__ import annotations

import dataclasses
import time

from scout.config import Settings
from scout.counters import Counters


def make_items(n: int) -> list[dict]:
    from bench.workload import domains_only_frames
    from scout.names import normalise_domain, root_domain

    now = time.time()
    items, seen = [], set()
    for text in domains_only_frames(n * 4 + 100, seed=23):
        import json

        for raw in json.loads(text)["data"]:
            name, _ = normalise_domain(raw)
            if name and name not in seen:
                seen.add(name)
                items.append({"d": name, "r": root_domain(name), "seen": now, "score": 0, "matches": [],
                              "urgency": 7})
                if len(items) >= n:
                    return items
    return items


def bench_enqueue(broker_url: str, n: int) -> dict:
    from scout.celery import configure
    from scout.producer.sinks import CelerySink
    from scout.store import LEDGER, LEDGER_ITEMS, MemoryStore, RedisStore

    s = dataclasses.replace(Settings(), broker_url=broker_url, redis_url=broker_url, max_backlog=10 ** 9)
    app = configure(s)
    import redis

    r = redis.Redis.from_url(broker_url)
    r.flushdb()
    items = make_items(n)
    sink = CelerySink(s, MemoryStore(), Counters(), app=app)
    # warm up: connection, routes, first publish
    sink.submit(items[:s.batch_size])
    sink.close()
    r.flushdb()
    mem0 = int(r.info("memory")["used_memory"])
    counters = Counters()
    sink = CelerySink(s, RedisStore(broker_url), counters, app=app)
    t = time.perf_counter()
    for k in range(0, len(items), 500):     # the producer hands over one de-duplication chunk at a time
        sink.submit(items[k:k + 500])
        sink.tick()
    sink.close()
    secs = time.perf_counter() - t
    enq = counters.get("enqueued")
    batches = counters.get("batches")
    mem1 = int(r.info("memory")["used_memory"])
    ledger_bytes = sum(r.memory_usage(k) or 0 for k in (LEDGER, LEDGER_ITEMS))
    keys = [k.decode() for k in r.keys("dns*")]
    payloads = []
    for k in keys:
        if r.type(k) == b"list":
            payloads += r.lrange(k, 0, -1)
    msg_bytes = sum(len(p) for p in payloads) / max(1, len(payloads))
    r.flushdb()
    # baseline: the same bytes, one LPUSH (one round trip) per message, as the transport does
    t = time.perf_counter()
    for p in payloads:
        r.lpush("dns", p)
    base_secs = time.perf_counter() - t
    r.flushdb()
    rate = enq / secs
    base = (sum(1 for _ in payloads) * s.batch_size) / base_secs if payloads else 0.0
    return {"enqueue_domains_per_s": round(rate), "enqueue_baseline_per_s": round(base),
            "enqueue_ratio": round(rate / base, 3) if base else None, "enqueued": enq, "batches": batches,
            "message_bytes": round(msg_bytes), "message_bytes_per_domain": round(msg_bytes / s.batch_size, 1),
            "redis_bytes_per_chain": round((mem1 - mem0) / max(1, batches)),
            "redis_bytes_per_domain": round((mem1 - mem0) / max(1, enq), 1),
            "ledger_bytes_per_domain": round(ledger_bytes / max(1, enq), 1)}

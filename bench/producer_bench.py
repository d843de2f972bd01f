"""Producer: parse + normalise + score + de-duplicate, frames/s and names/s, against a bare json.loads loop.

The producer is `scout.producer.producer.Producer` exactly as `scout produce` builds it (default watchlist
scoring on), with a counting null sink, over MemoryStore and over RedisStore (private redis-server).
Figures are wall-clock rates of one thread; the baseline is timed right after on the same frames.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import time

from scout.config import Settings
from scout.counters import Counters
from scout.producer.sinks import Sink
from scout.producer.producer import Producer
from scout.store import MemoryStore, RedisStore


class NullSink(Sink):
    """Counts what the producer hands over; never backlogged."""

    def __init__(self):
        self.domains = 0
        self.batches = 0

    def submit(self, items):
        self.domains += len(items)
        self.batches += 1


def make_watchlist():
    try:
        from scout.watchlist import WatchlistHolder
    except ImportError:
        return None
    return WatchlistHolder(None)


def run_producer(frames: list[str], store, watchlist=True, settings=None) -> dict:
    # full_frames() reuses the fixture's 40 DERs under new names, which certificate de-duplication would
    # drop: these figures are without it (measured on real precert/cert pairs in ct_dedup_bench.py).
    s = settings or dataclasses.replace(Settings(), cache_ttl=3600.0, ct_dedup_keys=0)
    sink = NullSink()
    p = Producer(s, sink, store, Counters(), make_watchlist() if watchlist else None)
    gc.collect()
    t, cpu = time.perf_counter(), time.thread_time()
    for n, text in enumerate(frames):
        p.handle_frame(text)
        if n % 64 == 0:
            p.tick()
    p.close()
    secs, cpu = time.perf_counter() - t, time.thread_time() - cpu
    c = p.counters.snapshot()
    # Rates per CPU-second of this thread (other processes on a busy machine do not count); wall-clock
    # rates beside them (with RedisStore they include the waits for Redis).
    return {"seconds": secs, "cpu_seconds": cpu, "frames": c.get("frames", 0), "names": c.get("names", 0),
            "unique": sink.domains, "certs_duplicate": c.get("certs_duplicate", 0), "names_per_s": c.get("names", 0) / cpu,
            "frames_per_s": c.get("frames", 0) / cpu, "names_per_wall_s": c.get("names", 0) / secs,
            "frames_per_wall_s": c.get("frames", 0) / secs}


def json_baseline(frames: list[str]) -> float:
    gc.collect()
    t = time.thread_time()
    for text in frames:
        json.loads(text)
    return time.thread_time() - t


def _measure(kind: str, frames: list[str], count: int, unit: str, redis_url: str | None) -> dict:
    """producer_<kind>_* figures: `unit` ("names" or "frames") per CPU-second in memory, against the bare
    `json.loads` baseline over `count` units, and with Redis de-duplication when a URL is given."""
    r = run_producer(frames, MemoryStore())
    base_rate = count / json_baseline(frames)
    out = {f"{kind}_memory": r, f"producer_{kind}_per_s": round(r[f"{unit}_per_s"]),
           f"producer_{kind}_baseline_per_s": round(base_rate),
           f"producer_{kind}_ratio": round(r[f"{unit}_per_s"] / base_rate, 3)}
    if redis_url:
        rs = RedisStore(redis_url)
        rs.r.flushdb()
        r3 = run_producer(frames, rs)
        out.update({f"{kind}_redis": r3, f"producer_{kind}_redis_per_s": round(r3[f"{unit}_per_s"]),
                    f"producer_{kind}_redis_per_wall_s": round(r3[f"{unit}_per_wall_s"])})
        rs.r.flushdb()
    return out


def bench_producer(domains_frames: list[str], full: list[str], n_names: int, redis_url: str | None) -> dict:
    out = _measure("domains", domains_frames, n_names, "names", redis_url)
    noscore = run_producer(domains_frames, MemoryStore(), watchlist=False)
    out["producer_domains_noscore_per_s"] = round(noscore["names_per_s"])
    out.update(_measure("certs", full, len(full), "frames", redis_url))   # full-stream certificates
    return out

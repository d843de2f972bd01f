"""Metrics (METRICS_PORT): what serving /metrics costs the processes that serve it.

- producer: names/s of the producer (domains-only frames, MemoryStore, watchlist off) while its /metrics
  is scraped every 250 ms (60 times Prometheus's default rate), against the same producer with nobody scraping (alternating rounds, best of
  each). The producer's hot path is unchanged (its Counters are read at scrape time), so the ratio shows
  what the scrapes themselves take from it.
- workers: the per-batch cost of counting into the Prometheus families (scout.metrics.count of what the
  save and WHOIS steps add to the shared counters), in microseconds, against MemoryStore.incr of the same
  counts (the store's own in-process bookkeeping).
- scrape: CPU milliseconds to render a worker's page with many WHOIS servers (300 servers x 3 statuses) and
  the stage histograms, against an empty registry's page.
"""
from __future__ import annotations

import dataclasses
import gc
import socket
import subprocess
import sys
import time

from scout.config import Settings
from scout.counters import Counters
from scout.producer.producer import Producer
from scout.store import MemoryStore

from bench.producer_bench import NullSink


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _producer_rate(frames: list[str], counters: Counters) -> float:
    s = dataclasses.replace(Settings(), cache_ttl=3600.0)
    p = Producer(s, NullSink(), MemoryStore(), counters, None)
    gc.collect()
    cpu = time.process_time()   # the whole process: the scraping thread's CPU counts against the producer
    for n, text in enumerate(frames):
        p.handle_frame(text)
        if n % 64 == 0:
            p.tick()
    p.close()
    return counters.get("names") / (time.process_time() - cpu)


SCRAPE_EVERY = 0.25


_SCRAPER = """
import sys, time, urllib.request
while True:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        r.read()
    time.sleep(float(sys.argv[2]))
"""


def _scraping(port: int, every: float = SCRAPE_EVERY) -> subprocess.Popen:
    """Prometheus's part, in a process of its own: only the serving side's CPU counts for the producer."""
    return subprocess.Popen([sys.executable, "-c", _SCRAPER, f"http://127.0.0.1:{port}/metrics", str(every)])


def bench_producer_scraped(frames: list[str], rounds: int = 3) -> dict:
    from scout import metrics

    port = _free_port()
    settings = dataclasses.replace(Settings(), metrics_port=port, metrics_address="127.0.0.1")
    quiet, scraped, scrapes = [], [], 0
    for _ in range(rounds):
        quiet.append(_producer_rate(frames, Counters()))
        counters = Counters()
        metrics.serve(settings, counters)
        scraper = _scraping(port)
        time.sleep(0.5)   # the scraper's interpreter started
        started = time.monotonic()
        scraped.append(_producer_rate(frames, counters))
        scrapes += int((time.monotonic() - started) / SCRAPE_EVERY)
        scraper.kill()
        scraper.wait(10)
    best_q, best_s = max(quiet), max(scraped)
    return {"metrics_producer_scraped_per_s": round(best_s), "metrics_producer_quiet_per_s": round(best_q),
            "metrics_producer_ratio": round(best_s / best_q, 3),
            "metrics_producer_rounds": {"quiet": [round(x) for x in quiet], "scraped": [round(x) for x in scraped]},
            "metrics_producer_scrapes": scrapes}


# What one save batch and one WHOIS step add to the shared counters (scout.stages.save / whois).
BATCH_COUNTS = [{"saved_new": 97, "saved_updated": 3, "domains_saved": 100},
                {"whois_domain_cache_hit": 60, "whois_domain_cache_miss": 40, "whois_dispatched": 12},
                {"whois_ip_cache_hit": 80, "whois_ip_reserved": 5, "whois_ip_cache_miss": 15},
                {"tasks_done:save": 1}]


def bench_count(n: int = 20_000) -> dict:
    from scout.metrics import count

    count(BATCH_COUNTS[0])   # families created once, as in a running worker
    t = time.perf_counter()
    for i in range(n):
        count(BATCH_COUNTS[i % len(BATCH_COUNTS)])
    us = (time.perf_counter() - t) / n * 1e6
    store = MemoryStore()
    t = time.perf_counter()
    for i in range(n):
        with store.lock:   # MemoryStore.incr's own work, without the hook into the families
            for k, v in BATCH_COUNTS[i % len(BATCH_COUNTS)].items():
                store.counts[k] = store.counts.get(k, 0) + v
    base = (time.perf_counter() - t) / n * 1e6
    return {"metrics_count_us_per_batch": round(us, 2), "metrics_count_baseline_us": round(base, 2),
            "metrics_count_ratio": round(us / base, 2)}


def bench_scrape(n: int = 200) -> dict:
    from prometheus_client import CollectorRegistry, generate_latest

    from scout.metrics import families

    families.enable()
    for i in range(300):
        for status in ("ok", "not_found", "error"):
            families.whois_lookup("domain", f"https://rdap{i}.example/", status)
    for stage in ("dns", "whois", "save", "lookup_domain_whois", "lookup_ip_whois", "apply_whois"):
        families.observe_stage(stage, 0.05)
    from prometheus_client import REGISTRY

    def timed(registry) -> float:   # CPU ms: other processes on a busy machine do not count
        t = time.process_time()
        for _ in range(n):
            generate_latest(registry)
        return (time.process_time() - t) / n * 1000

    page, empty = timed(REGISTRY), timed(CollectorRegistry())
    return {"metrics_scrape_ms": round(page, 3), "metrics_scrape_baseline_ms": round(empty, 4),
            "metrics_scrape_bytes": len(generate_latest(REGISTRY))}


def bench_producer_page(n: int = 200) -> dict:
    """CPU ms to render the page a producer serves (its counters, the process and GC collectors)."""
    from prometheus_client import REGISTRY, generate_latest

    t = time.process_time()
    for _ in range(n):
        generate_latest(REGISTRY)
    return {"metrics_producer_page_ms": round((time.process_time() - t) / n * 1000, 3),
            "metrics_producer_page_bytes": len(generate_latest(REGISTRY))}


def bench_metrics(frames: list[str], rounds: int) -> dict:
    out = bench_producer_scraped(frames, rounds)   # first: a producer's own page, not the big worker page
    out.update(bench_producer_page())
    out.update(bench_count())
    out.update(bench_scrape())
    return out

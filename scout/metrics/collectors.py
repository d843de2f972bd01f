"""Values read when Prometheus scrapes: a process's Counters (turned into the families of families.py),
and the pipeline-wide gauges the producer and the bridge export (queue depth and oldest-message age,
failed store, ledger, WHOIS caches and backlog, CT logs, the canary).

Every source is a callable handed in by whoever serves (the CLI), so this package reads nothing it
would have to import: a source that fails leaves its gauges out of that scrape (and says so in
`scout_scrape_errors`), never the whole page.
"""
from __future__ import annotations

import json
import logging
import time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from scout.metrics.families import count

log = logging.getLogger(__name__)

# Redis broker with priorities: kombu keeps one list per priority, `<queue>` and `<queue>:<n>`
# (scout.queues: sep ":", 10 levels); it pushes on the left and pops on the right.
PRIORITY_LEVELS = 10


class CountersFeed:
    """A Counters object's growth since the last scrape, added to the families (called before each scrape)."""

    def __init__(self, counters):
        self.counters = counters
        self._last: dict[str, int] = {}

    def __call__(self) -> None:
        now = self.counters.snapshot()
        delta = {k: v - self._last.get(k, 0) for k, v in now.items() if v != self._last.get(k, 0)}
        self._last = now
        count(delta)


def oldest_ages(redis_client, queues: list[str], now: float | None = None) -> dict[str, float]:
    """Age in seconds of the oldest message waiting in each queue of a Redis broker (0 when empty), from
    the publish time scout.celery stamps on every message (header `scout_published`)."""
    now = time.time() if now is None else now
    pipe = redis_client.pipeline(transaction=False)
    keys = [(q, q if p == 0 else f"{q}:{p}") for q in queues for p in range(PRIORITY_LEVELS)]
    for _, key in keys:
        pipe.lindex(key, -1)
    ages = {q: 0.0 for q in queues}
    for (q, _), raw in zip(keys, pipe.execute()):
        if not raw:
            continue
        try:
            sent = float(json.loads(raw)["headers"]["scout_published"])
        except (ValueError, KeyError, TypeError):  # published by an older version: no stamp
            continue
        ages[q] = max(ages[q], now - sent)
    return ages


def _gauge(name: str, doc: str, values: dict, label: str | None = None) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=[label] if label else None)
    for key, value in values.items():
        if value is not None:
            g.add_metric([str(key)] if label else [], float(value))
    return g


class PipelineCollector:
    """Pipeline-wide gauges. `sources` maps a part to a callable returning its families (see below)."""

    def __init__(self, **sources):
        self.sources = {k: v for k, v in sources.items() if v is not None}

    def collect(self):
        errors = {}
        for part, source in self.sources.items():
            try:
                yield from source()
                errors[part] = 0
            except Exception as exc:  # noqa: BLE001 - one broken source never takes the page down
                log.debug("metrics source %s failed: %s", part, exc)
                errors[part] = 1
        yield _gauge("scout_scrape_errors", "1 when a part of this page could not be read this time",
                     errors, "part")


def queue_families(queue_depths, queues: list[str], redis_client=None):
    """-> a source: messages waiting per queue, and the oldest one's age (Redis broker only)."""
    def source():
        yield _gauge("scout_queue_messages", "Messages (micro-batches or lookups) waiting in each queue",
                     queue_depths(queues), "queue")
        if redis_client is not None:
            yield _gauge("scout_queue_oldest_message_age_seconds",
                         "Age of the oldest message waiting in each queue (0: empty; Redis broker only)",
                         oldest_ages(redis_client, queues), "queue")
    return source


def store_families(store):
    """-> a source: failed store, ledger, WHOIS caches and backlog, from the shared store."""
    def source():
        yield _gauge("scout_failed_tasks", "Tasks waiting in the failed store (scout failed list)",
                     {"": store.failed_count()})
        in_flight, overdue = store.in_flight(time.time())
        yield _gauge("scout_ledger_domains", "Domains enqueued and neither saved nor failed yet, and of them "
                     "those older than LEDGER_TIMEOUT", {"in_flight": in_flight, "overdue": overdue}, "state")
        c = store.counters()
        ratios = {}
        for cache in ("domain", "ip"):
            hit, miss = c.get(f"whois_{cache}_cache_hit", 0), c.get(f"whois_{cache}_cache_miss", 0)
            ratios[cache] = hit / (hit + miss) if hit + miss else None
        yield _gauge("scout_whois_cache_hit_ratio", "Share of the WHOIS step's look-ups the cache answered, "
                     "since the store was created (all workers)", ratios, "cache")
        yield _gauge("scout_whois_backlog", "WHOIS lookups dispatched and not landed yet (WHOIS_MAX_BACKLOG)",
                     {"": c.get("whois_dispatched", 0) - c.get("whois_landed", 0)})
    return source


def ct_log_families(statuses):
    """-> a source: per CT log (statuses() -> list of dicts with name, behind, lag_seconds, ...)."""
    def source():
        rows = [dict(r, gap_entries=sum(int(g.get("entries", 0)) for g in r.get("gaps") or []))
                for r in statuses() or []]
        for field, metric, doc in (
                ("behind", "scout_ct_log_behind_entries", "Entries a CT log holds that the reader has not read"),
                ("lag_seconds", "scout_ct_log_lag_seconds", "Age of the newest entry read from a CT log"),
                ("tree_size", "scout_ct_log_tree_size", "A CT log's size at its last STH or checkpoint"),
                ("position", "scout_ct_log_position", "Next index the reader reads from a CT log"),
                ("errors", "scout_ct_log_errors", "Errors reading a CT log since the reader started"),
                ("lagging", "scout_ct_log_lagging", "1 while a CT log lags more than CT_LAG_ALERT"),
                ("head_age_seconds", "scout_ct_log_head_age_seconds", "Seconds since a CT log's tree head last grew"),
                ("stalled", "scout_ct_log_stalled", "1 while a CT log's tree head has not grown for CT_STALL_ALERT"),
                ("gap_entries", "scout_ct_log_gap_entries", "Entries of a CT log skipped and reported as gaps")):
            yield _gauge(metric, doc, {r.get("name") or r.get("url"): r.get(field) for r in rows
                                       if isinstance(r.get(field), (int, float))}, "log")
    return source


def canary_families(state):
    """-> a source: the periodic canary (state() -> dict, see scout.ops.canary.CanaryLoop.state)."""
    def source():
        s = state()
        yield _gauge("scout_canary_up", "1 when the last canary's document was saved in time, 0 when not",
                     {"": s.get("up")})
        yield _gauge("scout_canary_latency_seconds", "Last successful canary: seconds per stage "
                     "(queue wait included) and in total", s.get("latency") or {}, "stage")
        yield _gauge("scout_canary_last_success_timestamp_seconds", "When a canary last got through",
                     {"": s.get("last_success")})
        runs = CounterMetricFamily("scout_canary_runs", "Canaries sent by this process, by result (ok, timeout, "
                                   "error)", labels=["result"])
        for result, n in (s.get("runs") or {}).items():
            runs.add_metric([result], n)
        yield runs
    return source

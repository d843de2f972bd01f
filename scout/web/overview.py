"""The live overview: how fast domains arrive, what waits in the queues, the WHOIS backlog, and the last
hour's watchlist hits.

Figures come from three places, each optional: the SQL store (new domains per second over the last
minute, the last hour's hits, documents still waiting for WHOIS), the pipeline's counters (Redis when
REDIS_URL is set: saved/s sampled between page loads, lookups dispatched and not landed) and the broker
(queue depths, as `scout stats` reads them). A part that does not answer in time is shown as unavailable;
the page itself never waits on it for long.
"""
from __future__ import annotations

import collections
import concurrent.futures
import threading
import time

from scout import db
from scout.ops.stats import collect_stats

RATE_WINDOW = 60.0          # seconds over which domains/s is measured
PIPELINE_TIMEOUT = 5.0      # a broker or Redis that does not answer within this shows as unavailable
HITS_SHOWN = 50

_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="web-stats")


class Overview:
    def __init__(self, settings, store: db.SqlStore, clock=time.time):
        self.settings = settings
        self.store = store
        self.clock = clock
        self._samples: collections.deque = collections.deque(maxlen=256)  # (time, domains_saved)
        self._lock = threading.Lock()
        self._pending: concurrent.futures.Future | None = None

    def collect(self) -> dict:
        out = {"generated": self.clock(), "hit_min_score": self.hit_min_score()}
        out["store"] = self._store_figures()
        out["pipeline"] = self._pipeline_figures()
        return out

    def hit_min_score(self) -> int:
        """A hit is what alerts (ALERT_MIN_SCORE); with alerts off, any positive score."""
        return self.settings.alert_min_score or 1

    def _store_figures(self) -> dict:
        summary = db.overview(self.store, min_score=self.hit_min_score(), hits_limit=HITS_SHOWN)
        last_minute = db.count(self.store, db.Filters.from_query({"since": f"{RATE_WINDOW:g}s"}))
        return {"domains": summary["domains"], "last_hour": summary["last_hour"],
                "whois_pending": summary["whois_pending"], "hits": summary["hits"],
                "new_per_second": round(last_minute / RATE_WINDOW, 2)}

    def _pipeline_figures(self) -> dict:
        if not self.settings.redis_url and not self.settings.broker_url:
            # An embedded `scout run` keeps its queues and counters in its own process: nothing to read.
            return {"local": True}
        with self._lock:
            # One reading at a time: while a broker hangs, later page loads wait on the same reading
            # instead of piling up threads behind it.
            if self._pending is None or self._pending.done():
                self._pending = _pool.submit(collect_stats, self.settings)
            future = self._pending
        try:
            stats = future.result(timeout=PIPELINE_TIMEOUT)
        except concurrent.futures.TimeoutError:
            return {"error": f"the broker or Redis did not answer within {PIPELINE_TIMEOUT:g} s"}
        except Exception as exc:  # a broker that refuses, a Redis that is down: shown, never a 500
            return {"error": f"{type(exc).__name__}: {exc}"}
        c = stats.get("counters", {})
        whois_queues = {q: n for q, n in stats.get("queues", {}).items() if q.startswith("whois.")}
        return {"queues": stats.get("queues", {}), "queues_error": stats.get("queues_error"),
                "saved_per_second": self._saved_rate(c.get("domains_saved")),
                "whois_backlog": max(0, c.get("whois_dispatched", 0) - c.get("whois_landed", 0)),
                "whois_lookups_queued": sum(whois_queues.values()),
                "failed_tasks": stats.get("failed_tasks", 0),
                "in_flight": stats.get("in_flight", {}).get("domains", 0),
                "counters_seen": bool(c)}

    def _saved_rate(self, saved: int | None) -> float | None:
        """domains_saved per second between this load and the oldest sample within RATE_WINDOW."""
        if saved is None:
            return None
        now = self.clock()
        with self._lock:
            self._samples.append((now, saved))
            while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:
                self._samples.popleft()
            t0, s0 = self._samples[0]
        return round((saved - s0) / (now - t0), 2) if now - t0 >= 1 else None


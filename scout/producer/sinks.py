"""Celery sink: micro-batches of items -> chains dns -> whois -> save.

A batch leaves when it holds BATCH_SIZE domains or its oldest domain waited BATCH_LINGER. Publishing
never loses a batch quietly: while the broker is away batches wait in a bounded retry buffer; what
overflows it is counted as dropped and forgotten by the de-duplication store so it can come back.
Backpressure: above MAX_BACKLOG domains waiting in the chain's queues (dns, whois, save, the lookup
queues; scout.producer.backlog) the producer stops enqueueing (see Producer) and the ledger stops re-sending.
Every published domain goes into the in-flight ledger (scout.stages.chain.publish_chain), which this
sink also sweeps (scout.producer.ledger).
"""
from __future__ import annotations

import logging
import time
from collections import deque

from scout.counters import Counters
from scout.producer.backlog import Backlog
from scout.producer.ledger import Sweeper
from scout.queues import queue_lengths  # noqa: F401 - kept importable from here (scout.ops.stats, older code)
from scout.stages.chain import publish_chain

log = logging.getLogger(__name__)


# The producer must not block on a broker that is away: a short retry, then its own buffer takes over.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class Sink:
    """Where the producer hands its new domains: `submit` a list of items; `tick` now and then (time-based
    flushes), `close` at the end (flush, bounded wait), `backlogged` true while it cannot take more."""

    def submit(self, items: list[dict]) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        pass

    def close(self, timeout: float = 30.0) -> None:
        pass

    def backlogged(self) -> bool:
        return False


class CelerySink(Sink):
    def __init__(self, settings, store, counters: Counters, app=None, backlog_check_every: float = 0.5):
        self.s = settings
        self.store = store
        self.counters = counters
        self.app = app
        self._batch: list[dict] = []
        self._batch_started = 0.0
        self._retry: deque[list[dict]] = deque()
        self._retry_domains = 0
        self._next_retry = 0.0
        self._retry_delay = 0.5
        self.backlog = Backlog(settings, app, backlog_check_every, held=lambda: self._retry_domains,
                               who="producer (new domains are dropped, not marked seen)")
        self._sweeper = Sweeper(settings, store, self.backlog)

    # -------------------------------------------------------------- batches
    def submit(self, items: list[dict]) -> None:
        for it in items:
            if not self._batch:
                self._batch_started = time.monotonic()
            self._batch.append(it)
            if len(self._batch) >= self.s.batch_size:
                self._send(self._batch)
                self._batch = []

    def tick(self) -> None:
        now = time.monotonic()
        if self._batch and now - self._batch_started >= self.s.batch_linger:
            self._send(self._batch)
            self._batch = []
        if self._retry and now >= self._next_retry:
            self._drain_retry()
        if not self._retry:  # the broker takes chains: send again what the ledger says is overdue
            self._sweeper.maybe_sweep()

    def close(self, timeout: float = 30.0) -> None:
        if self._batch:
            self._send(self._batch)
            self._batch = []
        deadline = time.monotonic() + timeout
        while self._retry and time.monotonic() < deadline:
            self._drain_retry()
            if self._retry:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        if self._retry:
            lost = sum(len(b) for b in self._retry)
            self.counters.incr("dropped_publish", lost)
            self._forget([it for b in self._retry for it in b])
            log.error("could not publish %d domains before shutdown; they will be enqueued when seen again", lost)
            self._retry.clear()

    # -------------------------------------------------------------- publishing
    def _publish(self, items: list[dict]) -> None:
        publish_chain(items, self.s, self.store, retry_policy=PUBLISH_RETRY)

    def _send(self, items: list[dict]) -> None:
        if self._retry:  # keep order: older batches first
            self._queue_retry(items)
            return
        try:
            self._publish(items)
        except Exception as exc:
            log.warning("broker unavailable (%s); keeping %d domains to publish later", exc, len(items))
            self._queue_retry(items)
            return
        self.counters.incr("enqueued", len(items))
        self.counters.incr("batches")

    def _queue_retry(self, items: list[dict]) -> None:
        self._retry.append(items)
        self._retry_domains += len(items)
        while self._retry_domains > self.s.max_backlog and len(self._retry) > 1:
            old = self._retry.popleft()
            self._retry_domains -= len(old)
            self.counters.incr("dropped_publish", len(old))
            self._forget(old)
        if not self._next_retry or self._next_retry < time.monotonic():
            self._next_retry = time.monotonic() + self._retry_delay

    def _drain_retry(self) -> None:
        while self._retry:
            items = self._retry[0]
            try:
                self._publish(items)
            except Exception:
                self._retry_delay = min(30.0, self._retry_delay * 2)
                self._next_retry = time.monotonic() + self._retry_delay
                return
            self._retry.popleft()
            self._retry_domains -= len(items)
            self.counters.incr("enqueued", len(items))
            self.counters.incr("batches")
        self._retry_delay = 0.5
        self._next_retry = 0.0

    def _forget(self, items: list[dict]) -> None:
        try:
            self.store.forget([it["d"] for it in items])
        except Exception:
            pass

    # -------------------------------------------------------------- backpressure
    def backlogged(self) -> bool:
        return self.backlog.over()

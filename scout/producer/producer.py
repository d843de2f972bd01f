"""Producer: raw certstream frames -> normalised, de-duplicated domains -> micro-batches for a sink.

Single-threaded by design: the feed thread (websocket, CT logs or a recording) only parses nothing and
hands raw frames over a bounded queue; this loop does the CPU work and talks to Redis in pipelines:
one round trip per de-duplication chunk, one publish per micro-batch, never one per domain.
`build_producer` wires it to the configured sink; `run_live` and `replay_file` feed it.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time

from scout.celery import app
from scout.config import ConfigError, redact_url
from scout.counters import Counters
from scout.names import normalise_domain, root_domain
from scout.producer.certdedup import SeenCertificates
from scout.producer.nats_sink import NatsSink
from scout.producer.sinks import CelerySink
from scout.sources.frames import parse_frame
from scout.sources.live import start_feed
from scout.sources.recording import read_recording
from scout.stages.priority import score_item
from scout.store import get_store, with_local_seen
from scout.watchlist import WatchlistError, WatchlistHolder

log = logging.getLogger(__name__)

DEDUP_CHUNK = 512
COUNTER_PUSH_EVERY = 5.0   # seconds between pushes of the producer's counters to the store (scout stats)
# Each producer writes its CT reader's per-log status to `ct_logs:<producer id>` and names itself in the set
# `ct_logs:producers`, so producers that follow different logs (CT_LOGS) do not overwrite each other;
# `scout stats` merges them, the newest view of each log winning (a restarted producer gets a new id).
CT_STATUS_KEY = "ct_logs"
CT_STATUS_PRODUCERS = CT_STATUS_KEY + ":producers"
CT_STATUS_TTL = 86400.0    # kept a day: a stopped producer's last view stays visible, with its updated_at


class Producer:
    """Feed it frames with `handle_frame`; call `tick()` now and then and `close()` at the end."""

    def __init__(self, settings, sink, store, counters: Counters | None = None, watchlist=None):
        self.s = settings
        self.sink = sink
        self.store = with_local_seen(store)  # pass the same wrapped store to the sink, so its forget() clears both
        self.counters = counters or Counters()
        self.watchlist = watchlist          # a WatchlistHolder, or None
        self._candidates: dict[str, dict] = {}
        self._first_candidate = 0.0
        self._pushed: dict[str, int] = {}
        self._last_push = time.monotonic()
        self.ct_status = None               # () -> list of per-log dicts (the CT reader's status), or None
        self.producer_id = f"{socket.gethostname()}:{os.getpid()}"
        max_keys = getattr(settings, "ct_dedup_keys", 0)
        self.certs = SeenCertificates(max_keys) if max_keys else None   # precert/cert copies: certdedup.py

    # ---------------------------------------------------------------- frames
    def handle_frame(self, text) -> None:
        c = self.counters
        c.incr("frames")
        result = parse_frame(text)
        if result.skip:
            c.incr("frames_" + result.skip)
            return
        if result.leaf is not None and self.certs is not None and self.certs.duplicate(result.leaf):
            c.incr("certs_duplicate")          # another copy of one issuance: before any name is normalised
            return
        if result.truncated:
            c.incr("names_skipped_too_many", result.truncated)
        now = time.time()
        c.incr("names", len(result.names))  # one locked update per frame, not per name
        duplicates = 0
        for raw in result.names:
            name, reason = normalise_domain(raw, self.s.strip_www)
            if name is None:
                c.incr("names_skipped_" + reason)
                continue
            if name in self._candidates:
                duplicates += 1
                continue
            item = {"d": name, "r": root_domain(name), "seen": now}
            if result.certificate:
                item["c"] = result.certificate
            if not self._score(item):
                continue
            if not self._candidates:
                self._first_candidate = time.monotonic()
            self._candidates[name] = item
        if duplicates:
            c.incr("duplicates", duplicates)
        if len(self._candidates) >= DEDUP_CHUNK:
            self._flush_candidates()

    def _score(self, item: dict) -> bool:
        """ENRICH=watchlist: only names the watchlist matches go on. Otherwise the workers score (the
        producer is one thread; scoring is the costliest per-name step, so it scales out with them)."""
        if self.watchlist is None or self.s.enrich != "watchlist":
            return True
        if score_item(item, self.watchlist.current()) <= 0:
            self.counters.incr("names_skipped_not_watched")
            return False
        return True

    # ---------------------------------------------------------------- de-duplication
    def _flush_candidates(self) -> None:
        if not self._candidates:
            return
        items = list(self._candidates.values())
        self._candidates = {}
        c = self.counters
        if self.sink.backlogged():
            # Not marked as seen: the names come back when CT shows them again.
            c.incr("dropped_backlog", len(items))
            return
        try:
            is_new = self.store.add_if_new([it["d"] for it in items], self.s.cache_ttl)
        except Exception as exc:  # Redis away: enqueue anyway; a duplicate costs less than a loss
            c.incr("dedup_errors")
            log.warning("de-duplication store unavailable (%s); enqueueing without it", exc)
            is_new = [True] * len(items)
        new = []
        for it, fresh in zip(items, is_new):
            if fresh:
                new.append(it)
            else:
                c.incr("duplicates")
        if new:
            c.incr("unique", len(new))
            self.sink.submit(new)

    # ---------------------------------------------------------------- time and end
    def tick(self) -> None:
        """Flush what has waited long enough (call at least every BATCH_LINGER/2)."""
        if self._candidates and time.monotonic() - self._first_candidate >= self.s.batch_linger / 2:
            self._flush_candidates()
        self.sink.tick()
        if time.monotonic() - self._last_push >= COUNTER_PUSH_EVERY:
            self.push_counters()

    def push_counters(self) -> None:
        """Add what the counters gained since the last push to the store as `producer:<name>`: one
        pipelined round trip every COUNTER_PUSH_EVERY seconds, so `scout stats` sees the producer."""
        self._last_push = time.monotonic()
        self.publish_ct_status()
        now = self.counters.snapshot()
        delta = {f"producer:{k}": v - self._pushed.get(k, 0) for k, v in now.items() if v != self._pushed.get(k, 0)}
        if not delta:
            return
        try:
            self.store.incr(delta)
        except Exception as exc:  # the store is away: keep the delta for the next push
            log.debug("could not push producer counters: %s", exc)
            return
        self._pushed = now

    def publish_ct_status(self) -> None:
        """Write the CT reader's per-log status to the store, where `scout stats` reads it."""
        if self.ct_status is None:
            return
        try:
            logs = self.ct_status()
            if logs:
                doc = {"updated_at": round(time.time(), 3), "producer": self.producer_id, "logs": logs}
                self.store.set_json(f"{CT_STATUS_KEY}:{self.producer_id}", doc, CT_STATUS_TTL)
                self.store.add_members(CT_STATUS_PRODUCERS, [self.producer_id], CT_STATUS_TTL)
        except Exception as exc:  # the store is away: the next push brings it
            log.debug("could not publish the CT log status: %s", exc)

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything buffered to the sink (graceful stop)."""
        self._flush_candidates()
        self.sink.close(timeout)
        self.push_counters()


def consume(producer: Producer, frames: "queue.Queue[str]", stop: threading.Event,
            summary_every: float = 60.0) -> None:
    """The producer loop over a queue fed by a feed thread; returns after `stop` once the queue is drained."""
    tick_every = max(0.01, producer.s.batch_linger / 4)
    last_summary = time.monotonic()
    last_counts = producer.counters.snapshot()
    while True:
        try:
            text = frames.get(timeout=tick_every)
        except queue.Empty:
            if stop.is_set():
                break
        else:
            producer.handle_frame(text)
            # Drain what is already there without waking up per frame.
            for _ in range(1000):
                try:
                    producer.handle_frame(frames.get_nowait())
                except queue.Empty:
                    break
        producer.tick()
        now = time.monotonic()
        if summary_every and now - last_summary >= summary_every:
            counts = producer.counters.snapshot()
            log.info("producer: %s", summary_line(last_counts, counts, now - last_summary, frames.qsize()))
            last_summary, last_counts = now, counts


def summary_line(before: dict, after: dict, seconds: float, buffered: int) -> str:
    def rate(k):
        return (after.get(k, 0) - before.get(k, 0)) / max(seconds, 1e-9)

    dropped = sum(v for k, v in after.items() if k.startswith("dropped") or k == "frames_dropped_buffer")
    return (f"{rate('frames'):.0f} frames/s, {rate('names'):.0f} names/s, {rate('unique'):.0f} new domains/s; "
            f"totals frames={after.get('frames', 0)} unique={after.get('unique', 0)} "
            f"duplicates={after.get('duplicates', 0)} dropped={dropped} buffered={buffered}")


def build_producer(settings, counters: Counters) -> tuple[Producer, object]:
    """The producer and its sink as configured (SINK, ENRICH); -> (producer, the store it de-duplicates
    with). A watchlist that does not load with ENRICH=watchlist is a ConfigError: nothing to filter with."""
    store = with_local_seen(get_store())  # one store for producer and sink: a dropped name is forgotten by both
    watchlist = None
    if settings.enrich == "watchlist":
        try:
            watchlist = WatchlistHolder(settings.watchlist_file or None)
        except WatchlistError as exc:
            raise ConfigError(f"WATCHLIST_FILE={settings.watchlist_file!r}: {exc}") from None
    if settings.sink == "nats":
        sink = NatsSink(settings, counters)
    else:
        sink = CelerySink(settings, store, counters, app=app)
    return Producer(settings, sink, store, counters, watchlist), store


def replay_file(producer: Producer, path: str) -> None:
    """Feed a recording to the producer, then close it (everything buffered goes to the sink)."""
    for n, line in enumerate(read_recording(path)):
        producer.handle_frame(line)
        if n % 64 == 0:
            producer.tick()
    producer.close()


def run_live(settings, producer: Producer, counters: Counters, stop: threading.Event) -> None:
    """Feed the live source (CT logs or the websocket) to the producer until `stop`, then close it."""
    frames: queue.Queue = queue.Queue(maxsize=settings.frame_buffer)
    feed_thread, _ = start_feed(settings, frames, counters, stop)
    producer.ct_status = feed_thread.status if settings.source == "ct" else None
    log.info("reading %s", redact_url(settings.certstream_url) if settings.source == "certstream" else "CT logs directly")
    consume(producer, frames, stop, summary_every=settings.stats_interval)
    feed_thread.join(10)
    # A frame the feed queued just as consume() saw the queue empty: the CT reader counted it delivered
    # (its position is saved), so it must reach the sink too.
    while True:
        try:
            producer.handle_frame(frames.get_nowait())
        except queue.Empty:
            break
    producer.close()


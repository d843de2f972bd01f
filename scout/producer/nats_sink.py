"""NATS JetStream sink: each new domain becomes one message on NATS_SUBJECT in stream NATS_STREAM.

`scout bridge` (scout.producer.bridge) turns the messages into Celery chains. The stream is created when missing
and otherwise only has its limits (NATS_MAX_AGE, NATS_MAX_BYTES) brought in line: never deleted, never
purged, so a backlog survives producer restarts.

The producer is synchronous; nats-py is asyncio. The client runs in a background thread with its own
event loop, fed through a bounded queue of NATS_BUFFER domains. While NATS is away (the client keeps
reconnecting) the queue fills; what does not fit is counted as `dropped_nats_buffer` and forgotten by
the de-duplication store so the name can come back. Every message carries `Nats-Msg-Id` (domain and
sighting time), so a message published again after a lost acknowledgement is dropped by JetStream's
duplicate window instead of being stored twice.
"""
from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time

from scout.config import redact_url
from scout.counters import Counters
from scout.producer.sinks import Sink
from scout.store import get_store

log = logging.getLogger(__name__)

CHUNK = 256                 # publishes in flight at once
PUBLISH_TIMEOUT = 5.0       # seconds to wait for JetStream's acknowledgement of one message
DUPLICATE_WINDOW = 120.0    # JetStream drops a message whose Nats-Msg-Id it saw this recently


def msg_id(item: dict) -> str:
    """The de-duplication id of one sighting: the same item published twice is stored once."""
    return f"{item['d']}@{item.get('seen', '')}"


def encode(item: dict) -> bytes:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()


def stream_config(s):
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

    return StreamConfig(name=s.nats_stream, subjects=[s.nats_subject], retention=RetentionPolicy.LIMITS,
                        storage=StorageType.FILE, discard=DiscardPolicy.OLD, max_age=s.nats_max_age,
                        max_bytes=s.nats_max_bytes, duplicate_window=min(DUPLICATE_WINDOW, s.nats_max_age))


async def ensure_stream(js, s):
    """Create the stream if missing; else bring its limits and subjects in line. Never purges."""
    from nats.js.errors import NotFoundError

    want = stream_config(s)
    try:
        info = await js.stream_info(s.nats_stream)
    except NotFoundError:
        log.info("creating JetStream stream %s (subject %s, max age %.0f s, max bytes %d)",
                 s.nats_stream, s.nats_subject, s.nats_max_age, s.nats_max_bytes)
        return await js.add_stream(want)
    cfg = info.config
    changed = []
    if s.nats_subject not in (cfg.subjects or []):
        cfg.subjects = list(cfg.subjects or []) + [s.nats_subject]
        changed.append("subjects")
    if abs((cfg.max_age or 0) - want.max_age) > 0.001:
        cfg.max_age = want.max_age
        changed.append("max_age")
    if cfg.max_bytes != want.max_bytes:
        cfg.max_bytes = want.max_bytes
        changed.append("max_bytes")
    if (cfg.duplicate_window or 0) > want.max_age:
        cfg.duplicate_window = want.duplicate_window
        changed.append("duplicate_window")
    if changed:
        log.info("updating JetStream stream %s: %s", s.nats_stream, ", ".join(changed))
        info = await js.update_stream(cfg)
    return info


async def connect(s, name: str, stopping, on_event=None, quiet=None):
    """Connect to NATS_URL, retrying until it answers or `stopping()`; the client then reconnects by itself."""
    import nats

    async def disconnected():
        if quiet and quiet():  # our own close
            return
        log.warning("%s: disconnected from NATS", name)
        if on_event:
            on_event("disconnected")

    async def reconnected():
        log.info("%s: reconnected to NATS", name)
        if on_event:
            on_event("reconnected")

    async def error(exc):
        log.debug("%s: NATS client: %s", name, exc)

    delay = 0.2
    while not stopping():
        # With max_reconnect_attempts=-1 nats-py keeps trying a server that is down, even the first time:
        # run it as a task that a stop request can cancel.
        task = asyncio.ensure_future(nats.connect(
            s.nats_url, name=name, connect_timeout=2, allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=0.5, disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error))
        next_log = time.monotonic() + 5
        while not task.done():
            await asyncio.wait({task}, timeout=0.1)
            if stopping():
                task.cancel()
                try:
                    await task
                except BaseException:
                    pass
                return None
            if time.monotonic() >= next_log:
                next_log += 30
                log.warning("%s: NATS at %s does not answer; still trying", name, redact_url(s.nats_url))
        try:
            return task.result()
        except Exception as exc:
            log.warning("%s: cannot connect to NATS at %s (%s); retrying in %.1f s",
                        name, s.nats_url, exc or type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)
    return None


class NatsSink(Sink):
    """The Producer's sink (scout.producer.sinks.Sink) publishing to JetStream."""

    def __init__(self, settings, counters: Counters, store=None):
        self.s = settings
        self.counters = counters
        self._store = store
        self._queue: queue.Queue[dict] = queue.Queue(maxsize=settings.nats_buffer)
        self._held = 0                      # taken from the queue, not yet acknowledged by JetStream
        self._held_items: list[dict] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()   # publish what is queued, then leave
        self._abort = threading.Event()     # leave now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._last_drop_log = 0.0
        self._thread = threading.Thread(target=self._run, name="nats-sink", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    # -------------------------------------------------------------- producer side (its thread)
    def submit(self, items: list[dict]) -> None:
        dropped = []
        for it in items:
            try:
                self._queue.put_nowait(it)
            except queue.Full:
                dropped.append(it)
        if dropped:
            self._drop(dropped, "dropped_nats_buffer")
            now = time.monotonic()
            if now - self._last_drop_log >= 60:
                self._last_drop_log = now
                log.warning("NATS buffer full (NATS_BUFFER=%d): dropping domains until NATS takes them "
                            "(%d so far)", self.s.nats_buffer, self.counters.get("dropped_nats_buffer"))
        self._notify()

    def tick(self) -> None:
        self._notify()

    def buffered(self) -> int:
        with self._lock:
            return self._queue.qsize() + self._held

    def backlogged(self) -> bool:
        """True while the local buffer is full: the producer then drops names without marking them seen."""
        return self.buffered() >= self.s.nats_buffer

    def close(self, timeout: float = 30.0) -> None:
        """Publish everything buffered (up to `timeout` s), then stop; what is left is counted as dropped."""
        self._closing.set()
        self._notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort.set()
            self._notify()
            self._thread.join(10)
        left = []
        with self._lock:
            left.extend(self._held_items)
            self._held_items, self._held = [], 0
        while True:
            try:
                left.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if left:
            self._drop(left, "dropped_publish")
            log.error("could not publish %d domains to NATS before shutdown; they will be published when "
                      "seen again", len(left))

    # -------------------------------------------------------------- helpers
    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass

    def _drop(self, items: list[dict], counter: str) -> None:
        self.counters.incr(counter, len(items))
        store = self._store
        if store is None:
            try:
                store = get_store()
            except Exception:
                return
        try:
            store.forget([it["d"] for it in items])
        except Exception:
            pass

    def _take(self, n: int) -> list[dict]:
        out = []
        with self._lock:
            while len(out) < n:
                try:
                    out.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._held += len(out)
            self._held_items.extend(out)
        return out

    def _done(self, items: list[dict]) -> None:
        ids = {id(it) for it in items}
        with self._lock:
            self._held_items = [it for it in self._held_items if id(it) not in ids]
            self._held = len(self._held_items)

    # -------------------------------------------------------------- the client's thread
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("NATS sink stopped")
        finally:
            loop.close()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        nc = await connect(self.s, "scout-producer", self._abort.is_set,
                           lambda ev: self.counters.incr("nats_" + ev), quiet=self._closing.is_set)
        if nc is None:
            return
        js = nc.jetstream(timeout=PUBLISH_TIMEOUT)
        try:
            await self._ensure(js)
            await self._publish_loop(js)
        finally:
            try:
                await asyncio.wait_for(nc.close(), 5)
            except Exception:
                pass

    async def _ensure(self, js) -> None:
        delay = 0.5
        while not self._abort.is_set():
            try:
                await ensure_stream(js, self.s)
                return
            except Exception as exc:
                log.warning("JetStream stream %s not ready (%s); retrying in %.1f s",
                            self.s.nats_stream, exc or type(exc).__name__, delay)
                await self._sleep(delay)
                delay = min(10.0, delay * 2)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _publish_loop(self, js) -> None:
        pending: list[dict] = []
        delay = 0.2
        while not self._abort.is_set():
            if not pending:
                pending = self._take(CHUNK)
            if not pending:
                if self._closing.is_set():
                    return
                await self._sleep(0.5)
                continue
            failed = await self._publish(js, pending)
            failed_ids = {id(it) for it in failed}
            self._done([it for it in pending if id(it) not in failed_ids])
            if failed:
                self.counters.incr("nats_publish_errors", len(failed))
                pending = failed
                if not self._abort.is_set():
                    await self._sleep(delay)
                delay = min(5.0, delay * 2)
            else:
                pending = []
                delay = 0.2

    async def _publish(self, js, items: list[dict]) -> list[dict]:
        """Publish concurrently; -> the items JetStream did not acknowledge."""
        s = self.s

        async def one(it):
            return await js.publish(s.nats_subject, encode(it), stream=s.nats_stream,
                             headers={"Nats-Msg-Id": msg_id(it)})

        results = await asyncio.gather(*(one(it) for it in items), return_exceptions=True)
        failed = [it for it, r in zip(items, results) if isinstance(r, BaseException)]
        ok = len(items) - len(failed)
        if ok:
            self.counters.incr("nats_published", ok)
            dup = sum(1 for r in results if not isinstance(r, BaseException) and getattr(r, "duplicate", False))
            if dup:
                self.counters.incr("nats_duplicates", dup)
        if failed:
            exc = next(r for r in results if isinstance(r, BaseException))
            log.warning("NATS publish failed for %d of %d domains (%s); retrying",
                        len(failed), len(items), exc or type(exc).__name__)
        return failed

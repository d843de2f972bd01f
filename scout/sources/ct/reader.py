"""CTSource: follow every selected CT log and hand each new entry to the producer as a certstream frame.

    log list ──> one worker thread per log ──> bounded queue ──> run() calls on_frame(frame)
                 (own HTTP session, own backoff)                 (and records delivered positions)

- Start position: the log's current size ("tip", like certstream-server-go), or where CT_STATE_FILE
  says the last run stopped, or a fixed index (`start_at=0` in tests).
- Errors (HTTP 429/5xx, timeouts, bad responses, a truncated tile) back off per log — exponential with
  jitter, honouring Retry-After — without touching other logs. Malformed entries are counted and skipped
  (see malformed.py).
- Memory is bounded: the frame queue, batch/tile sizes, response sizes and the caches all have limits.
  When the queue is full a worker waits (backpressure), and stops waiting when asked to stop.
- Positions advance only when run() has delivered a frame (queue order is log order), so the state
  file never claims an entry that is still in the queue. It is written atomically (tmp + rename).
- The log list is re-read periodically: new usable logs get a worker, logs that left the usable set
  (retired, rejected, removed) are dropped.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import random
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from scout.sources.ct import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, Fetcher, HTTPStatusError
from scout.sources.ct import loglist
from scout.sources.ct.decode import ChainCache, MalformedEntry, SourceInfo, build_frame, decode_rfc6962, parse_data_tile
from scout.sources.ct.loglist import CTLog
from scout.sources.ct.malformed import CTError, MalformedReporter, MalformedResponse, TruncatedTile
from scout.sources.ct.rfc6962 import RFC6962Client
from scout.sources.ct.static import TILE_WIDTH, IssuerCache, StaticClient

log = logging.getLogger("scout.ct")

STATE_VERSION = 1


@dataclass
class ReaderOptions:
    poll_interval: float = 5.0            # wait between polls of a log that has nothing new
    refresh_interval: float = 6 * 3600.0  # re-read the log list
    batch_size: int = 256                 # get-entries page asked for
    buffer_size: int = 2000               # frames between the workers and on_frame
    backoff_min: float = 1.0
    backoff_max: float = 300.0
    partial_tile_wait: float = 60.0       # how long a partial tile may wait to fill up before we read it
    state_save_interval: float = 10.0
    http_timeout: tuple = DEFAULT_TIMEOUT
    max_response_bytes: int = DEFAULT_MAX_BYTES
    drain_timeout: float = 2.0            # at stop: how long to keep delivering queued frames


class _Stopped(Exception):
    pass


# ------------------------------------------------------------------------------------------ state file

def load_state(path: str) -> dict[str, int]:
    """{log key: next index} from a state file; {} when absent or unreadable (logged)."""
    if not path:
        return {}
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("CT state file %s unreadable (%s); starting from each log's tip", path, e)
        return {}
    out = {}
    for key, v in (doc.get("logs") or {}).items() if isinstance(doc, dict) else ():
        n = v.get("next_index") if isinstance(v, dict) else None
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            out[key] = n
    return out


def save_state(path: str, positions: dict[str, int], names: dict[str, str] | None = None) -> None:
    """Write positions atomically: a crash leaves either the old file or the new one, never half."""
    names = names or {}
    doc = {"version": STATE_VERSION, "saved_at": round(time.time(), 3),
           "logs": {k: {"next_index": n, "name": names.get(k, "")} for k, n in sorted(positions.items())}}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ------------------------------------------------------------------------------------------ workers

class LogWorker(threading.Thread):
    """Follows one log. Subclasses implement `step()`: read what is new, emit it, return True if any."""

    def __init__(self, ctlog: CTLog, start: int | None, source: "CTSource") -> None:
        super().__init__(name=f"ct-{ctlog.type}-{ctlog.url.split('//', 1)[-1]}", daemon=True)
        self.ctlog = ctlog
        self.next = start                 # next index to read; None = start at the tip
        self.tree_size: int | None = None
        self.failures = 0
        self.src = source
        self.opts = source.options
        self.info = SourceInfo(ctlog.name, ctlog.url, ctlog.type)
        self.fetcher = Fetcher(timeout=self.opts.http_timeout, max_bytes=self.opts.max_response_bytes)
        self._stop_event = threading.Event()

    # -- control
    def stop(self) -> None:
        self._stop_event.set()

    def stopped(self) -> bool:
        return self._stop_event.is_set() or self.src.stop_event.is_set()

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopped():
            left = end - time.monotonic()
            if left <= 0:
                return
            self._stop_event.wait(min(left, 0.25))

    # -- output
    def emit(self, next_index: int, frame: dict | None) -> None:
        """Queue a frame (or, with None, only a position) for run(); wait while the queue is full."""
        item = (self.ctlog.key_id, next_index, frame)
        while True:
            if self.stopped():
                raise _Stopped
            try:
                self.src.frames.put(item, timeout=0.25)
                return
            except queue.Full:
                continue

    # -- loop
    def run(self) -> None:
        try:
            while not self.stopped():
                try:
                    progressed = self.step()
                except _Stopped:
                    break
                except (CTError, OSError) as e:
                    self.failures += 1
                    self._count_error(e)
                    self._sleep(self._backoff(e))
                    continue
                except Exception:   # a bug must not kill the worker silently, nor spin
                    self.failures += 1
                    self.src.counters.incr("ct_worker_errors")
                    log.exception("CT log %s: unexpected error", self.ctlog.name)
                    self._sleep(self._backoff(None))
                    continue
                if not progressed:
                    self._sleep(self.opts.poll_interval)
        finally:
            self.fetcher.close()

    def _count_error(self, e: Exception) -> None:
        c = self.src.counters
        if isinstance(e, HTTPStatusError):
            c.incr("ct_http_errors")
            c.incr(f"ct_http_{e.status}")
        elif isinstance(e, TruncatedTile):
            self.src.reporter.tile(self.ctlog.name, e)
        elif isinstance(e, MalformedResponse):
            c.incr("ct_bad_responses")
        else:
            c.incr("ct_http_errors")
        level = logging.INFO if self.failures < 3 else logging.WARNING
        log.log(level, "CT log %s: %s (failure %d in a row)", self.ctlog.name, e, self.failures)

    def _backoff(self, e: Exception | None) -> float:
        o = self.opts
        delay = min(o.backoff_max, o.backoff_min * (2 ** min(self.failures - 1, 20)))
        delay *= random.uniform(0.5, 1.0)
        retry_after = getattr(e, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, min(retry_after, o.backoff_max))
        return delay

    def step(self) -> bool:   # pragma: no cover - abstract
        raise NotImplementedError

    def _succeeded(self) -> None:
        self.failures = 0

    def _start_if_needed(self, size: int) -> bool:
        """On the first successful poll without a start position, start at the tip. True if it did."""
        self.tree_size = size
        if self.next is None:
            self.next = size
            self.emit(size, None)
            log.info("CT log %s: following from its tip, index %d", self.ctlog.name, size)
            return True
        if self.next > size:
            log.debug("CT log %s: tree size %d is behind our position %d", self.ctlog.name, size, self.next)
        return False


class RFC6962Worker(LogWorker):
    def __init__(self, ctlog: CTLog, start: int | None, source: "CTSource") -> None:
        super().__init__(ctlog, start, source)
        self.client = RFC6962Client(ctlog.url, self.fetcher, batch=self.opts.batch_size)

    def step(self) -> bool:
        size = self.client.tree_size()
        self._succeeded()
        if self._start_if_needed(size):
            return False
        progressed = False
        while self.next < size and not self.stopped():
            entries = self.client.get_entries(self.next, size - 1)
            self._succeeded()
            for raw in entries:
                try:
                    frame = decode_rfc6962(raw.leaf_input, raw.extra_data, raw.index, self.info, self.src.chain_cache)
                except MalformedEntry as e:
                    self.src.reporter.entry(self.ctlog.name, raw.index, e)
                    frame = None
                if frame is not None:
                    self.emit(raw.index + 1, frame)
                self.next = raw.index + 1
            self.emit(self.next, None)
            progressed = True
        return progressed


class StaticWorker(LogWorker):
    def __init__(self, ctlog: CTLog, start: int | None, source: "CTSource") -> None:
        super().__init__(ctlog, start, source)
        self.client = StaticClient(ctlog.url, self.fetcher, source.issuers)
        self._partial: tuple[int, float] | None = None    # (tile index, first seen) of a deferred partial

    def step(self) -> bool:
        size = self.client.checkpoint().size
        self._succeeded()
        if self._start_if_needed(size):
            return False
        progressed = False
        while self.next < size and not self.stopped():
            n = self.next // TILE_WIDTH
            width = min(size - n * TILE_WIDTH, TILE_WIDTH)
            if width < TILE_WIDTH and not self._partial_due(n):
                break
            data, served = self.client.data_tile(n, width)
            self._succeeded()
            entries, err = parse_data_tile(data, served, n * TILE_WIDTH)
            for i, entry in enumerate(entries[:width]):
                index = n * TILE_WIDTH + i
                if index < self.next:
                    continue
                self._one(index, entry)
            self.emit(self.next, None)
            progressed = True
            if err is not None:
                raise err
            if width < TILE_WIDTH:
                self._partial = (n, time.monotonic())   # read this partial tile again only after the wait
                break
        return progressed

    def _partial_due(self, n: int) -> bool:
        now = time.monotonic()
        if self._partial is None or self._partial[0] != n:
            self._partial = (n, now)
        return now - self._partial[1] >= self.opts.partial_tile_wait

    def _one(self, index: int, entry) -> None:
        frame = None
        if isinstance(entry, MalformedEntry):
            self.src.reporter.entry(self.ctlog.name, index, entry)
        else:
            chain = []
            for fp in entry.chain_fingerprints:
                der = self.client.issuer(fp)      # transport errors propagate: retry this entry later
                if der is None:
                    self.src.counters.incr("ct_missing_issuers")
                else:
                    chain.append(der)
            try:
                frame = build_frame(entry, index, self.info, chain=chain, chain_cache=self.src.chain_cache)
            except MalformedEntry as e:
                self.src.reporter.entry(self.ctlog.name, index, e)
        if frame is not None:
            self.emit(index + 1, frame)
        self.next = index + 1


_WORKERS = {loglist.RFC6962: RFC6962Worker, loglist.TILED: StaticWorker}


# ------------------------------------------------------------------------------------------ source

class CTSource:
    """Reads CT logs directly. `run()` blocks until `stop_event` is set.

    settings: scout.config.Settings (ct_log_list_url, ct_logs, ct_state_file are used).
    on_frame(frame): called from run()'s thread with each certificate_update frame, in log order per log.
    log_list: overrides settings.ct_log_list_url (URL, file:// URL or path).
    start_at: None = the state file's position if it has one, else the tip; "tip" = always the tip;
              an int = that index in every log (tests use 0).
    """

    def __init__(self, settings, on_frame, stop_event: threading.Event, counters, *,
                 log_list: str | None = None, start_at: int | str | None = None,
                 options: ReaderOptions | None = None, **option_overrides) -> None:
        self.settings = settings
        self.on_frame = on_frame
        self.stop_event = stop_event
        self.counters = counters
        self.log_list_source = log_list or getattr(settings, "ct_log_list_url", "") or ""
        self.ct_logs = getattr(settings, "ct_logs", "") or ""
        self.state_file = getattr(settings, "ct_state_file", "") or ""
        self.options = options or ReaderOptions()
        for k, v in option_overrides.items():
            if not hasattr(self.options, k):
                raise TypeError(f"unknown CTSource option {k!r}")
            setattr(self.options, k, v)
        if isinstance(start_at, str) and start_at.isdigit():
            start_at = int(start_at)
        if start_at not in (None, "tip", "state") and not isinstance(start_at, int):
            raise ValueError("start_at must be None, 'tip', 'state' or an index")
        self.start_at = start_at
        self.frames: queue.Queue = queue.Queue(maxsize=self.options.buffer_size)
        self._refused: set[str] = set()     # logs with a frame on_frame refused (returned False): held
        self.reporter = MalformedReporter(counters)
        self.chain_cache = ChainCache()
        self.issuers = IssuerCache()
        self.positions: dict[str, int] = {} if start_at == "tip" or isinstance(start_at, int) else load_state(self.state_file)
        self._names: dict[str, str] = {}
        self._workers: dict[str, LogWorker] = {}
        self._lock = threading.Lock()
        self._refreshing = False
        self.log_list_origin = ""

    # -- public helpers
    def status(self) -> list[dict]:
        """One dict per followed log: name, url, type, next_index, tree_size, failures."""
        with self._lock:
            workers = list(self._workers.values())
        return [{"name": w.ctlog.name, "url": w.ctlog.url, "type": w.ctlog.type, "next_index": w.next,
                 "tree_size": w.tree_size, "failures": w.failures} for w in workers]

    def active_logs(self) -> list[CTLog]:
        with self._lock:
            return [w.ctlog for w in self._workers.values()]

    # -- log list
    def _select(self, fallback: bool) -> list[CTLog]:
        logs, origin = loglist.load(self.log_list_source, fallback=fallback)
        self.log_list_origin = origin
        chosen = loglist.select(logs, self.ct_logs)
        if not chosen:
            log.warning("CT: no usable logs in %s%s", origin, f" matching CT_LOGS={self.ct_logs!r}" if self.ct_logs else "")
        return chosen

    def _apply(self, chosen: list[CTLog]) -> None:
        wanted = {lg.key_id: lg for lg in chosen}
        with self._lock:
            for key, w in list(self._workers.items()):
                if key not in wanted:
                    log.info("CT log %s left the usable set; dropping it", w.ctlog.name)
                    w.stop()
                    del self._workers[key]
                    self.positions.pop(key, None)
                    self.counters.incr("ct_logs_dropped")
            for key, lg in wanted.items():
                if key in self._workers or self.stop_event.is_set():
                    continue
                start = self.start_at if isinstance(self.start_at, int) else self.positions.get(key)
                w = _WORKERS[lg.type](lg, start, self)
                self._workers[key] = w
                self._names[key] = lg.name
                self.counters.incr("ct_logs_started")
                w.start()

    def _refresh(self) -> None:
        try:
            self._apply(self._select(fallback=False))
        except CTError as e:
            self.counters.incr("ct_log_list_errors")
            log.warning("CT log list refresh failed (%s); keeping the current logs", e)
        except Exception:
            self.counters.incr("ct_log_list_errors")
            log.exception("CT log list refresh failed")
        finally:
            self._refreshing = False

    # -- state
    def save_state(self) -> None:
        if not self.state_file:
            return
        with self._lock:
            positions = dict(self.positions)
        try:
            save_state(self.state_file, positions, self._names)
        except OSError as e:
            self.counters.incr("ct_state_errors")
            log.warning("CT state file %s not written: %s", self.state_file, e)

    # -- main loop
    def _deliver(self, item) -> None:
        key, next_index, frame = item
        if key in self._refused:
            return      # an earlier frame of this log was not taken: its position must not move past it
        if frame is not None:
            if self.on_frame(frame) is False:   # the consumer is stopping and did not take it
                self._refused.add(key)
                return
            self.counters.incr("ct_entries")
        with self._lock:
            if key in self._workers:
                self.positions[key] = next_index

    def run(self) -> None:
        o = self.options
        self._apply(self._select(fallback=True))
        log.info("CT: following %d logs from %s", len(self._workers), self.log_list_origin)
        now = time.monotonic()
        next_save, next_refresh = now + o.state_save_interval, now + o.refresh_interval
        try:
            while not self.stop_event.is_set():
                try:
                    self._deliver(self.frames.get(timeout=0.2))
                except queue.Empty:
                    pass
                now = time.monotonic()
                if now >= next_save:
                    self.save_state()
                    next_save = now + o.state_save_interval
                if now >= next_refresh and not self._refreshing:
                    self._refreshing = True
                    threading.Thread(target=self._refresh, name="ct-log-list", daemon=True).start()
                    next_refresh = now + o.refresh_interval
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
        for w in workers:
            w.stop()
        deadline = time.monotonic() + self.options.drain_timeout
        while time.monotonic() < deadline:      # deliver what the workers already queued
            try:
                self._deliver(self.frames.get_nowait())
            except queue.Empty:
                if not any(w.is_alive() for w in workers):
                    break
                time.sleep(0.02)
        for w in workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
        self.save_state()

"""CTSource: follow every selected CT log and hand each new entry to the producer as a certstream frame.

    log list ──> one worker thread per log ──> bounded queue ──> run() calls on_frame(frame)
                 (own HTTP session, own backoff)                 (and records delivered positions)

- Start position: the log's current size ("tip", like certstream-server-go), or where CT_STATE_FILE
  says the last run stopped, or a fixed index (`start_at=0` in tests).
- Errors (HTTP 429/5xx, timeouts, bad responses, a truncated tile) back off per log — exponential with
  jitter, honouring Retry-After — without touching other logs. Malformed entries are counted and skipped
  (see malformed.py).
- Entries a log does not serve (pruned, or failing CT_SKIP_AFTER times in a row while the log answers
  its tree head) are skipped after a binary search for the first entry it serves, and reported as a
  gap (health.py, state.py): nothing is skipped silently. Each worker keeps its LogHealth; status()
  collects them, and run() warns once per log lagging over CT_LAG_ALERT or stalled over CT_STALL_ALERT.
- Memory is bounded: the frame queue, batch/tile sizes, response sizes and the caches all have limits.
  When the queue is full a worker waits (backpressure), and stops waiting when asked to stop.
- Positions advance only when run() has delivered a frame (queue order is log order), so the state
  file never claims an entry that is still in the queue. It is written atomically (tmp + rename).
- The log list is re-read periodically: new usable logs get a worker, logs that left the usable set
  (retired, rejected, removed) are dropped.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass

from scout.sources.ct import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, Fetcher, HTTPStatusError
from scout.sources.ct import loglist
from scout.sources.ct.decode import ChainCache, MalformedEntry, SourceInfo, build_frame, decode_rfc6962, parse_data_tile
from scout.sources.ct.health import LogHealth
from scout.sources.ct.loglist import CTLog
from scout.sources.ct.malformed import CTError, MalformedReporter, MalformedResponse, TruncatedTile
from scout.sources.ct.rfc6962 import RFC6962Client
from scout.sources.ct.state import LogState, load_states, save_states
from scout.sources.ct.static import TILE_WIDTH, IssuerCache, StaticClient

log = logging.getLogger("scout.ct")



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
    skip_after: int = 10                  # failures in a row at one position (head answered) before a gap


class _Stopped(Exception):
    pass


# ------------------------------------------------------------------------------------------ state file
# The format lives in state.py (v2: ranges and gaps); these two keep the v1-era interface.

def load_state(path: str) -> dict[str, int]:
    """{log key: next index} from a state file (v1 or v2); {} when absent or unreadable (logged)."""
    return {k: st.next_index for k, st in load_states(path).items()}


def save_state(path: str, positions: dict[str, int], names: dict[str, str] | None = None) -> None:
    """Write positions atomically (no ranges or gaps known: coverage starts at each position)."""
    names = names or {}
    save_states(path, {k: LogState(n, name=names.get(k, "")) for k, n in positions.items()})


# ------------------------------------------------------------------------------------------ workers

class LogWorker(threading.Thread):
    """Follows one log. Subclasses implement `step()`: read what is new, emit it, return True if any."""

    def __init__(self, ctlog: CTLog, start: int | None, source: "CTSource") -> None:
        super().__init__(name=f"ct-{ctlog.type}-{ctlog.url.split('//', 1)[-1]}", daemon=True)
        self.ctlog = ctlog
        self.next = start                 # next index to read; None = start at the tip
        self.first_index = start          # where coverage began (the state file's ranges start here)
        self.tree_size: int | None = None
        self.failures = 0
        self.health = LogHealth(ctlog.name, ctlog.url, ctlog.type)
        self._head_ok = False             # this step's tree head answered: later failures are the entries'
        self._stuck: tuple = (None, 0, None)   # (position, failures in a row there, last error)
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
                    self._note_stuck(e)
                    self._wait_after(e, self._backoff(e))
                    continue
                except Exception as e:   # a bug must not kill the worker silently, nor spin
                    self.failures += 1
                    self.src.counters.incr("ct_worker_errors")
                    log.exception("CT log %s: unexpected error", self.ctlog.name)
                    self._wait_after(e, self._backoff(None))
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

    def _wait_after(self, e: Exception, delay: float) -> None:
        self.health.failed(e, delay)
        self._sleep(delay)

    def step(self) -> bool:   # pragma: no cover - abstract
        raise NotImplementedError

    # -- gaps: entries the log does not serve are skipped after CT_SKIP_AFTER tries, and reported
    def _note_stuck(self, e: Exception) -> None:
        """A failure after the head answered is a failure to fetch the entries at self.next (429 aside:
        that is the log limiting us, not the entry)."""
        if not self._head_ok or self.next is None or (isinstance(e, HTTPStatusError) and e.status == 429):
            return
        pos, n, _ = self._stuck
        self._stuck = (self.next, n + 1 if pos == self.next else 1, e)

    def _skip_if_stuck(self, size: int) -> None:
        """Before fetching at self.next: when it failed skip_after times in a row, find the first entry
        the log serves (binary search) and record what lies between as a gap."""
        pos, n, err = self._stuck
        if pos != self.next or n < self.opts.skip_after:
            return
        self._stuck = (None, 0, None)
        q = self._first_readable(size)
        if q is None:
            log.warning("CT log %s: entries at %d failed %d times, but nothing after them is served either; "
                        "not skipping (%s)", self.ctlog.name, self.next, n, err)
            return
        if q == self.next:
            q = self._narrow(size, err)
            if q is None:
                return
        reason = f"not served after {n} tries ({err})"
        self.health.add_gap(self.next, q, reason[:300])
        self.src.counters.incr("ct_gaps")
        self.src.counters.incr("ct_gap_entries", q - self.next)
        self.next = q
        self.emit(q, None)

    def _first_readable(self, size: int) -> int | None:   # pragma: no cover - abstract
        raise NotImplementedError

    def _narrow(self, size: int, err) -> int | None:      # pragma: no cover - abstract
        """self.next is served on its own: what to skip (-> the next position) or None (retry)."""
        raise NotImplementedError

    @staticmethod
    def _served(fetch) -> bool:
        """Did `fetch()` succeed? An HTTP error other than 429, or a bad response, means not served;
        429 and transport errors propagate (back off, try the skip later)."""
        try:
            fetch()
            return True
        except HTTPStatusError as e:
            if e.status == 429:
                raise
            return False
        except MalformedResponse:
            return False

    def _succeeded(self) -> None:
        self.failures = 0
        self.health.succeeded()

    def _read_to(self, size: int, polled_at: float) -> None:
        """Health bookkeeping after a step: caught up with the head polled at `polled_at`?"""
        if self.next is not None and self.next >= size:
            self.health.caught_up(polled_at)

    def _poll_head(self, read_size) -> tuple[int, float] | None:
        """Read the log's size with `read_size()`; (size, polled at) when there is a step to take, None when
        the reader has just started at the tip (the first poll of a log without a start position)."""
        polled_at = time.time()
        self._head_ok = False
        size = read_size()
        self._succeeded()
        self.health.head(size)
        self._head_ok = True
        if self._start_if_needed(size):
            self._read_to(size, polled_at)
            return None
        return size, polled_at

    def _start_if_needed(self, size: int) -> bool:
        """On the first successful poll without a start position, start at the tip. True if it did."""
        self.tree_size = size
        if self.next is None:
            self.next = self.first_index = size
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
        self._careful_until = 0

    def _first_readable(self, size: int) -> int | None:
        return first_readable(self.next, size, lambda i: self._served(lambda: self.client.get_entries(i, i)))

    def _narrow(self, size: int, err) -> int | None:
        self._careful_until = self.next + self.opts.batch_size
        return None

    def step(self) -> bool:
        head = self._poll_head(self.client.tree_size)
        if head is None:
            return False
        size, polled_at = head
        progressed = False
        while self.next < size and not self.stopped():
            self._skip_if_stuck(size)
            if self.next >= size:
                break
            # entry by entry for a while after a batch failed but its first entry alone did not
            self.client.batch = 1 if self.next < self._careful_until else self.opts.batch_size
            entries = self.client.get_entries(self.next, size - 1)
            self._succeeded()
            for raw in entries:
                try:
                    frame = decode_rfc6962(raw.leaf_input, raw.extra_data, raw.index, self.info, self.src.chain_cache)
                except MalformedEntry as e:
                    self.src.reporter.entry(self.ctlog.name, raw.index, e)
                    frame = None
                if frame is not None:
                    self.health.entry_read(frame["data"]["source"]["timestamp"] * 1000)
                    self.emit(raw.index + 1, frame)
                self.next = raw.index + 1
            self.emit(self.next, None)
            progressed = True
        self._read_to(size, polled_at)
        return progressed


class StaticWorker(LogWorker):
    def __init__(self, ctlog: CTLog, start: int | None, source: "CTSource") -> None:
        super().__init__(ctlog, start, source)
        self.client = StaticClient(ctlog.url, self.fetcher, source.issuers)
        self._partial: tuple[int, float] | None = None    # (tile index, first seen) of a deferred partial

    def step(self) -> bool:
        head = self._poll_head(lambda: self.client.checkpoint().size)
        if head is None:
            return False
        size, polled_at = head
        progressed = False
        while self.next < size and not self.stopped():
            self._skip_if_stuck(size)
            if self.next >= size:
                break
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
        self._read_to(size, polled_at)
        return progressed

    def _first_readable(self, size: int) -> int | None:
        def tile_served(t: int) -> bool:
            return self._served(lambda: self.client.data_tile(t, min(size - t * TILE_WIDTH, TILE_WIDTH)))

        t = first_readable(self.next // TILE_WIDTH, (size - 1) // TILE_WIDTH + 1, tile_served)
        return None if t is None else max(self.next, t * TILE_WIDTH)

    def _narrow(self, size: int, err) -> int | None:
        """The tile is served: an issuer that is not, or a tile that stays truncated from here on."""
        if isinstance(err, TruncatedTile):
            return min(size, (self.next // TILE_WIDTH + 1) * TILE_WIDTH)
        return self.next + 1

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
            self.health.entry_read(entry.timestamp)
            self.emit(index + 1, frame)
        self.next = index + 1


_WORKERS = {loglist.RFC6962: RFC6962Worker, loglist.TILED: StaticWorker}


def first_readable(lo: int, hi: int, readable) -> int | None:
    """The smallest i in [lo, hi) with readable(i), assuming what is not readable is a prefix (a pruned
    log; one bad entry is a prefix of one). None when hi - 1 is not readable: then the log serves
    nothing here, which is an outage, not a gap. log2(hi - lo) + 2 probes."""
    if hi <= lo or not readable(hi - 1):
        return None
    if readable(lo):
        return lo
    bad, good = lo, hi - 1
    while good - bad > 1:
        mid = (bad + good) // 2
        if readable(mid):
            good = mid
        else:
            bad = mid
    return good


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
        self.lag_alert = float(getattr(settings, "ct_lag_alert", 600.0) or 0.0)
        self.stall_alert = float(getattr(settings, "ct_stall_alert", 3600.0) or 0.0)
        self.options = options or ReaderOptions(skip_after=getattr(settings, "ct_skip_after", 10) or 10)
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
        self.states: dict[str, LogState] = ({} if start_at == "tip" or isinstance(start_at, int)
                                            else load_states(self.state_file))
        self.positions: dict[str, int] = {k: st.next_index for k, st in self.states.items()}
        self._names: dict[str, str] = {}
        self._workers: dict[str, LogWorker] = {}
        self._lock = threading.Lock()
        self._refreshing = False
        self.log_list_origin = ""

    # -- public helpers
    def status(self) -> list[dict]:
        """One dict per followed log, in log-list order (see health.py for the meaning of each field):
        name, url, kind, tree_size, position, behind, lag_seconds, last_success, errors, backoff_until,
        last_error, lagging, head_age_seconds, stalled, gaps; and the older names type (= kind), next_index (the position the worker
        reads next), failures (in a row). `position` is the next index delivered to on_frame."""
        now = time.time()
        with self._lock:
            items = [(w, self.positions.get(key)) for key, w in self._workers.items()]
        out = []
        for w, delivered in items:
            d = w.health.snapshot(delivered if delivered is not None else w.next, w.tree_size, now)
            d.update(type=w.ctlog.type, next_index=w.next, failures=w.failures)
            out.append(d)
        return out

    def check_lag(self) -> None:
        """CT_LAG_ALERT and CT_STALL_ALERT: warn once per log when its lag or the age of its tree head goes
        over the threshold (health.py)."""
        with self._lock:
            workers = list(self._workers.values())
        for w in workers:
            if w.health.check_lag(self.lag_alert):
                self.counters.incr("ct_lag_alerts")
            if w.health.check_stall(self.stall_alert):
                self.counters.incr("ct_stall_alerts")

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
                if key in self.states and start is not None:      # resumed: coverage and gaps go on
                    w.first_index = self.states[key].first_index if self.states[key].first_index is not None else start
                    w.health.gaps = list(self.states[key].gaps)
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
            states = {}
            for key, n in self.positions.items():
                w = self._workers.get(key)
                old = self.states.get(key)
                if w is not None:
                    states[key] = LogState(n, w.first_index, w.ctlog.name, w.ctlog.url, list(w.health.gaps))
                elif old is not None:
                    states[key] = LogState(n, old.first_index, old.name, old.url, old.gaps)
                else:
                    states[key] = LogState(n, name=self._names.get(key, ""))
        try:
            save_states(self.state_file, states)
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
        next_save, next_refresh, next_lag_check = now + o.state_save_interval, now + o.refresh_interval, now
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
                if now >= next_lag_check:
                    self.check_lag()
                    next_lag_check = now + 1.0
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

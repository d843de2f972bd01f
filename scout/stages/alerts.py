"""Alerts: documents whose watchlist score reaches ALERT_MIN_SCORE go to a JSONL file and, optionally, a webhook.

`AlertSink(settings).maybe_alert(document)` is called once per domain sighting, with the document as
written (merged with earlier sightings: first_seen, seen_count); scout.stages.save does not call it again
when a batch is retried or a message delivered twice (the sighting is already counted). It never blocks on the
network: the file append is one `write()` on an `O_APPEND` descriptor under an exclusive `flock`, so lines
from several processes never interleave; the webhook POST happens on a background thread fed by a bounded
queue (when the queue is full the alert is dropped from the webhook, still written to the file, and
counted), with a few retries and exponential backoff. `close(timeout)` waits for queued posts.

Counters (`sink.counters.snapshot()`): alerts, alert_file_errors, webhook_sent, webhook_failed (gave up
after the retries), webhook_dropped (queue full or closed), webhook_retries.
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scout.config import redact_url
from scout.counters import Counters

log = logging.getLogger(__name__)

_STOP = object()
USER_AGENT = "certstream-scout-alerts/1"


def alert_file_path(settings: Any) -> Path:
    """ALERT_FILE, or <OUTPUT_DIR>/alerts.jsonl when it is empty."""
    if getattr(settings, "alert_file", ""):
        return Path(settings.alert_file)
    return Path(getattr(settings, "output_dir", "") or ".") / "alerts.jsonl"


class AlertSink:
    """Writes (and posts) documents whose `score` is at least settings.alert_min_score (> 0)."""

    def __init__(self, settings: Any, *, queue_size: int = 1000, attempts: int = 3, backoff: float = 0.5,
                 timeout: float = 5.0):
        self.min_score = int(getattr(settings, "alert_min_score", 0) or 0)
        self.path = alert_file_path(settings)
        self.webhook_url = (getattr(settings, "alert_webhook_url", "") or "").strip()
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        self.counters = Counters()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closed = False
        self._stop_event = threading.Event()
        self._opener = urllib.request.build_opener()  # honours *_proxy / no_proxy from the environment
        self._dir_made = False
        self._pid = os.getpid()

    @property
    def enabled(self) -> bool:
        return self.min_score > 0

    def maybe_alert(self, document: dict) -> bool:
        """Alert on `document` if its score reaches the threshold. True when it was alerted. Never raises
        on a bad document or an I/O problem (they are logged and counted); never waits for the network."""
        if self.min_score <= 0:
            return False
        try:
            score = document.get("score")
            if isinstance(score, bool) or not isinstance(score, (int, float)) or score < self.min_score:
                return False
            line = (json.dumps(document, ensure_ascii=False, default=str, separators=(",", ":")) + "\n").encode()
        except Exception as e:  # not a dict, or cannot be serialised at all
            log.warning("alert skipped: cannot serialise document: %r", e)
            return False
        self.counters.incr("alerts")
        self._append(line)
        if self.webhook_url:
            self._enqueue(line[:-1])
        return True

    # --- the file -------------------------------------------------------------------------------------------

    def _append(self, line: bytes) -> None:
        try:
            if not self._dir_made:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._dir_made = True
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                view = memoryview(line)
                while view:  # one write() in practice; loop only if the kernel returns short
                    n = os.write(fd, view)
                    view = view[n:]
            finally:
                os.close(fd)  # closing releases the lock
        except OSError as e:
            self.counters.incr("alert_file_errors")
            if e.errno != errno.EINTR:
                log.warning("cannot append alert to %s: %s", self.path, e)

    # --- the webhook ---------------------------------------------------------------------------------------

    def _enqueue(self, body: bytes) -> None:
        if self._closed:
            self.counters.incr("webhook_dropped")
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.counters.incr("webhook_dropped")

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._thread_lock:
            if self._pid != os.getpid():  # forked (prefork workers): the parent's thread is not here
                self._queue = queue.Queue(maxsize=self._queue.maxsize)
                self._thread = None
                self._pid = os.getpid()
            if self._thread is None:
                t = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
                t.start()
                self._thread = t

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if body is _STOP:
                    return
                self._deliver(body)
            except Exception:  # never let the thread die
                log.exception("alert webhook thread error")
            finally:
                self._queue.task_done()

    def _deliver(self, body: bytes) -> bool:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            error = self._post(body)
            if error is None:
                self.counters.incr("webhook_sent")
                return True
            permanent = error.startswith("HTTP 4") and not error.startswith(("HTTP 408", "HTTP 429"))
            if permanent or attempt == self.attempts:
                self.counters.incr("webhook_failed")
                log.warning("alert webhook %s gave up after %d attempt(s): %s",
                            redact_url(self.webhook_url, keep_path=False), attempt, error)
                return False
            self.counters.incr("webhook_retries")
            if self._stop_event.wait(delay):  # closing: stop waiting between attempts
                self.counters.incr("webhook_failed")
                return False
            delay *= 2
        return False

    def _post(self, body: bytes) -> str | None:
        """One POST; None on 2xx, else a short reason."""
        try:
            req = urllib.request.Request(self.webhook_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
            with self._opener.open(req, timeout=self.timeout) as resp:
                resp.read(65536)
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
            e.close()
        except urllib.error.URLError as e:   # the reason only: an exception's text may quote the URL
            reason = e.reason
            return f"URLError: {reason.strerror or type(reason).__name__}" if isinstance(reason, OSError) \
                else "URLError"
        except Exception as e:  # timeouts, resets, bad URL... (type only, same reason)
            return type(e).__name__
        return None if 200 <= status < 300 else f"HTTP {status}"

    def pending(self) -> int:
        return self._queue.unfinished_tasks

    def close(self, timeout: float = 5.0) -> bool:
        """Stop accepting alerts for the webhook and wait up to `timeout` s for queued ones to be posted.
        True when everything queued was handled (sent or given up on)."""
        self._closed = True
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        done = not self._queue.unfinished_tasks
        if not done:
            self._stop_event.set()  # cut retry waits short
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return done


_sinks: dict[tuple, AlertSink] = {}
_sinks_lock = threading.Lock()


def get_alert_sink(settings: Any) -> AlertSink:
    """The process's AlertSink for these settings (one per distinct alert configuration), closed at exit
    with a 2 s flush."""
    key = (int(getattr(settings, "alert_min_score", 0) or 0), str(alert_file_path(settings)),
           (getattr(settings, "alert_webhook_url", "") or "").strip())
    sink = _sinks.get(key)
    if sink is None:
        with _sinks_lock:
            sink = _sinks.get(key)
            if sink is None:
                sink = AlertSink(settings)
                _sinks[key] = sink
                atexit.register(sink.close, 2.0)
    return sink

"""The live source, started in a thread that fills a bounded queue of raw frames: CT logs read directly
(SOURCE=ct, scout.sources.ct) or a certstream websocket (scout.sources.feed). `scout run`, `scout
produce` and `scout record` read that queue."""
from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Callable

from scout.config import ConfigError
from scout.sources.feed import WebSocketFeed

log = logging.getLogger(__name__)


class FeedThread(threading.Thread):
    """The thread reading the live source. `status()` is the CT reader's per-log status (a list of dicts,
    see scout.sources.ct.health), [] for a websocket: what the producer publishes for `scout stats`."""

    source = None           # the CTSource with SOURCE=ct

    def status(self) -> list[dict]:
        return self.source.status() if self.source is not None else []


def start_feed(settings, frames: "queue.Queue[str]", counters, stop: threading.Event, url: str | None = None,
               stop_when_done: bool = False) -> tuple[FeedThread, Callable[[], None]]:
    """Start reading `url` (a websocket), else CERTSTREAM_URL, or the CT logs when SOURCE=ct and no `url`
    is given, into `frames`. -> (the reading thread, a function that stops it at once). With
    `stop_when_done` the source ending for any reason sets `stop`."""
    source = None
    if url is None and settings.source == "ct":
        # Imported here: the CT reader (cryptography, requests) is needed only with SOURCE=ct.
        from scout.sources.ct.reader import CTSource

        source = CTSource(settings, _waiting_put(frames, counters, stop), stop, counters)
        target, stopper = source.run, stop.set
    else:
        url = url or settings.certstream_url
        if settings.source == "certstream" and not url:
            raise ConfigError("CERTSTREAM_URL: SOURCE=certstream needs a ws:// or wss:// URL "
                              "(or leave SOURCE empty to read CT logs directly)")
        feed = WebSocketFeed(url, frames, counters, stop)
        target, stopper = feed.run, feed.stop

    def run() -> None:
        try:
            target()
        finally:
            if stop_when_done:
                stop.set()

    thread = FeedThread(target=run, name="feed", daemon=True)
    thread.source = source
    thread.start()
    return thread, stopper


def _waiting_put(frames: "queue.Queue[str]", counters, stop: threading.Event):
    """A CT reader's frame callback: the frame as one compact JSON line into `frames`, waiting while the
    queue is full. CT readers can wait (their logs keep the entries, and the state file must not skip
    them), unlike a websocket, whose server drops frames for slow readers."""
    def put(frame: dict) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        while not stop.is_set():
            try:
                frames.put(text, timeout=0.5)
                return
            except queue.Full:
                counters.incr("ct_buffer_full_waits")
    return put

"""`WatchlistHolder`: the current watchlist of a file, re-read when the file changes."""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from .rules import Watchlist, WatchlistError, load_watchlist

log = logging.getLogger("scout.watchlist")
class WatchlistHolder:
    """The current watchlist of a file, re-read when the file changes; cheap to call per domain.

    `current()` costs a clock read most of the time; every `check_interval` seconds one caller stats the
    file and, when its (mtime, size, inode) changed, loads it. A file that fails to load (bad YAML, bad
    regex, missing...) leaves the last good watchlist in place and is logged once per bad version.
    The first load happens in the constructor and raises WatchlistError: a bad file at startup is a
    configuration error. `path` None or "" means the bundled default, which is never re-read.
    """

    def __init__(self, path: str | os.PathLike | None, check_interval: float = 2.0):
        self.path = Path(path) if path else None
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._sig = self._stat()
        self._watchlist = load_watchlist(self.path)
        self._bad_sig: object = None
        self._next_check = time.monotonic() + check_interval
        self.version = 1            # bumped on every successful reload
        self.last_error: str | None = None

    def _stat(self):
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return "missing"
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> Watchlist:
        if self.path is None or time.monotonic() < self._next_check:
            return self._watchlist
        self.check()
        return self._watchlist

    def check(self) -> bool:
        """Stat the file now and reload it if it changed. True when a new watchlist was loaded."""
        if self.path is None or not self._lock.acquire(blocking=False):
            return False
        try:
            self._next_check = time.monotonic() + self.check_interval
            sig = self._stat()
            if sig == self._sig or sig == self._bad_sig:
                return False
            try:
                if sig == "missing":
                    raise WatchlistError(f"{self.path}: file not found")
                wl = load_watchlist(self.path)
            except WatchlistError as e:
                self._bad_sig = sig
                self.last_error = str(e)
                log.warning("watchlist not reloaded, keeping the last good one: %s", e)
                return False
            except Exception as e:  # anything unexpected: same policy
                self._bad_sig = sig
                self.last_error = f"{self.path}: {e!r}"
                log.warning("watchlist not reloaded, keeping the last good one: %s: %r", self.path, e)
                return False
            self._watchlist = wl
            self._sig = sig
            self._bad_sig = None
            self.last_error = None
            self.version += 1
            log.info("watchlist reloaded: %s", wl.describe())
            return True
        finally:
            self._lock.release()

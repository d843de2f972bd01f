"""Per-log health: is each CT log still being read, how far behind is it, what was skipped.

`LogHealth` is what one log worker knows about itself; `snapshot()` turns it into the dict `scout stats`
shows under `ct_logs` (and the metrics read): name, url, kind, tree_size, position, behind, lag_seconds,
last_success, errors, backoff_until, plus last_error, lagging, head_age_seconds, stalled and gaps.

lag_seconds is how much log time we have not covered: now minus the later of (a) the time of the last
successful tree-head poll after which we had read everything the head announced, and (b) the log
timestamp of the newest entry read. A log we are caught up with shows about one poll interval; a log
that stalls, rate-limits us or grows faster than we read shows a growing figure. Before the first
successful read it counts from when we started following the log.

lag_seconds cannot see a log whose tree head stops growing (every poll succeeds and we hold everything it
announces), so head_age_seconds does: now minus when we last saw the tree size grow (or started following
the log). Busy logs grow every second; CT_STALL_ALERT (default 1 h) marks the log `stalled`.

Wall-clock times are Unix seconds (floats), so other processes can show them.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("scout.ct")

MAX_GAPS_KEPT = 1000    # per log: the oldest are merged into a summary beyond this (bounded state file)


@dataclass
class Gap:
    """Entries [start, end) of a log that were skipped, and why (pruned, unfetchable, ...)."""

    start: int
    end: int
    reason: str
    at: float                      # when it was skipped (Unix seconds)

    def as_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "entries": self.end - self.start,
                "reason": self.reason, "at": round(self.at, 3)}

    @classmethod
    def from_dict(cls, d) -> "Gap | None":
        try:
            start, end = int(d["start"]), int(d["end"])
            return cls(start, end, str(d.get("reason", "")), float(d.get("at", 0.0))) if 0 <= start < end else None
        except (KeyError, TypeError, ValueError):
            return None


class LogHealth:
    """Updated by the log's worker thread, read by status() from others: one lock around it."""

    def __init__(self, name: str, url: str, kind: str) -> None:
        self.name, self.url, self.kind = name, url, kind
        self.lock = threading.Lock()
        self.started = time.time()
        self.errors = 0
        self.last_success: float | None = None
        self.last_error = ""
        self.backoff_until: float | None = None
        self.covered_at: float | None = None       # (a) in the module docstring
        self.newest_entry: float | None = None     # (b)
        self.lagging = False
        self.head_size: int | None = None          # the largest tree size seen, and when it last grew
        self.head_grew_at: float | None = None
        self.stalled = False
        self.gaps: list[Gap] = []

    # -- events (worker thread)
    def succeeded(self) -> None:
        with self.lock:
            self.last_success = time.time()
            self.backoff_until = None

    def caught_up(self, polled_at: float) -> None:
        """We hold every entry of a tree head fetched at `polled_at`."""
        with self.lock:
            self.covered_at = max(self.covered_at or 0.0, polled_at)

    def head(self, size: int) -> None:
        """A tree head of `size` entries was read."""
        with self.lock:
            if self.head_size is None or size > self.head_size:
                self.head_size, self.head_grew_at = size, time.time()

    def entry_read(self, timestamp_ms: int) -> None:
        ts = timestamp_ms / 1000.0
        if self.newest_entry is None or ts > self.newest_entry:
            self.newest_entry = ts          # a float store: atomic enough without the lock

    def failed(self, error: Exception, backoff: float) -> None:
        with self.lock:
            self.errors += 1
            self.last_error = str(error)[:300]
            self.backoff_until = time.time() + backoff

    def add_gap(self, start: int, end: int, reason: str) -> Gap:
        gap = Gap(start, end, reason, time.time())
        with self.lock:
            self.gaps.append(gap)
            if len(self.gaps) > MAX_GAPS_KEPT:      # merge the two oldest: still reported, in fewer lines
                a, b = self.gaps[0], self.gaps[1]
                self.gaps[:2] = [Gap(a.start, b.end, "several (merged)", b.at)]
        log.warning("CT log %s: entries %d..%d (%d) skipped: %s", self.name, start, end - 1, end - start, reason)
        return gap

    # -- reading
    def lag_seconds(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        covered = max(self.covered_at or 0.0, self.newest_entry or 0.0) or self.started
        return max(0.0, now - covered)

    def head_age_seconds(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        return max(0.0, now - (self.head_grew_at or self.started))

    def check_lag(self, threshold: float, now: float | None = None) -> bool | None:
        """Log a warning when the lag first exceeds `threshold`, and once when it is back under it.
        -> True when it just started lagging, False when it just recovered, None when nothing changed."""
        return self._alert("lagging", self.lag_seconds(now), threshold,
                           "CT log %s is %.0f s behind (CT_LAG_ALERT=%.0f s); last error: %s",
                           "CT log %s caught up: %.0f s behind")

    def check_stall(self, threshold: float, now: float | None = None) -> bool | None:
        """The same for a tree head that has not grown for `threshold` seconds (CT_STALL_ALERT)."""
        return self._alert("stalled", self.head_age_seconds(now), threshold,
                           "CT log %s: its tree head has not grown for %.0f s (CT_STALL_ALERT=%.0f s); last error: %s",
                           "CT log %s: its tree head grows again (%.0f s since it last grew)")

    def _alert(self, flag: str, value: float, threshold: float, on: str, off: str) -> bool | None:
        if threshold <= 0:
            return None
        if value > threshold and not getattr(self, flag):
            setattr(self, flag, True)
            log.warning(on, self.name, value, threshold, self.last_error or "none")
            return True
        if value <= threshold and getattr(self, flag):
            setattr(self, flag, False)
            log.warning(off, self.name, value)
            return False
        return None

    def snapshot(self, position: int | None, tree_size: int | None, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        with self.lock:
            backoff = self.backoff_until if self.backoff_until and self.backoff_until > now else None
            behind = max(0, tree_size - position) if tree_size is not None and position is not None else None
            return {"name": self.name, "url": self.url, "kind": self.kind, "tree_size": tree_size,
                    "position": position, "behind": behind, "lag_seconds": round(self.lag_seconds(now), 3),
                    "last_success": round(self.last_success, 3) if self.last_success else None,
                    "errors": self.errors, "backoff_until": round(backoff, 3) if backoff else None,
                    "last_error": self.last_error, "lagging": self.lagging,
                    "head_age_seconds": round(self.head_age_seconds(now), 3), "stalled": self.stalled,
                    "gaps": [g.as_dict() for g in self.gaps]}

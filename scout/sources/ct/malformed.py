"""Malformed input from CT logs: the error types, and the one place that counts and reports them.

A log can serve bytes we cannot use at three levels, and each is handled differently:

- an *entry* (one leaf or one tile entry whose framing is intact) that does not decode: it is counted
  as `ct_malformed`, reported (a few times per log, then only counted) and skipped — the log moves on;
- a *tile* whose framing breaks part-way (a truncated or corrupt response): the complete entries before
  the break are used, the rest is fetched again after a backoff — nothing is skipped;
- a *response* (STH, checkpoint, get-entries body) that is not what the protocol promises: treated like
  a transport error (backoff and retry).
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("scout.ct")


class CTError(Exception):
    """Base class for everything this package raises about a log's data or transport."""


class MalformedEntry(CTError, ValueError):
    """One log entry that cannot be decoded. `reason` is a short machine-friendly tag."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class MalformedResponse(CTError, ValueError):
    """A whole response (STH, checkpoint, get-entries page, tile) that breaks the protocol."""


class TruncatedTile(MalformedResponse):
    """A data tile whose framing breaks after `complete` whole entries."""

    def __init__(self, complete: int, expected: int, detail: str = "") -> None:
        super().__init__(f"data tile truncated after {complete} of {expected} entries {detail}".strip())
        self.complete = complete
        self.expected = expected


class MalformedReporter:
    """Counts malformed entries and logs the first few per log, so a broken log cannot flood the log."""

    def __init__(self, counters, max_reports_per_log: int = 5) -> None:
        self._counters = counters
        self._max = max_reports_per_log
        self._reported: dict[str, int] = {}
        self._lock = threading.Lock()

    def entry(self, log_name: str, index: int, err: Exception) -> None:
        self._counters.incr("ct_malformed")
        reason = getattr(err, "reason", type(err).__name__)
        self._counters.incr(f"ct_malformed_{reason}")
        with self._lock:
            n = self._reported.get(log_name, 0)
            self._reported[log_name] = n + 1
        if n < self._max:
            log.warning("CT log %s: entry %d skipped (%s)%s", log_name, index, err,
                        " — further malformed entries of this log are only counted" if n + 1 == self._max else "")

    def tile(self, log_name: str, err: Exception) -> None:
        self._counters.incr("ct_malformed_tiles")
        log.warning("CT log %s: %s; fetching it again", log_name, err)

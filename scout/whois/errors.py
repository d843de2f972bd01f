"""Exceptions of the WHOIS/RDAP lookup layer.

Only `RateLimited` ever leaves a lookup function: every other failure becomes a status string in the
result, so one hostile or broken server cannot crash a worker.
"""
from __future__ import annotations


class RateLimited(Exception):
    """A server said "slow down" (HTTP 429, 403/422/503 with limit wording, a port-43 quota message).

    `server` names who said it (an RDAP base URL or `host:port`), `retry_after` is the number of seconds
    the server asked us to wait (from `Retry-After`), or None when it did not say. The caller decides
    how to wait (a Celery retry with a countdown); the lookup functions never sleep.
    """

    def __init__(self, server: str, retry_after: float | None = None):
        super().__init__(server, retry_after)
        self.server = server
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.retry_after is None:
            return f"rate limited by {self.server}"
        return f"rate limited by {self.server} (retry after {self.retry_after:g} s)"


class LookupFailed(Exception):
    """Internal: a request failed in a way that becomes `status = "error: <reason>"`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

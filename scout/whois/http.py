"""A bounded, source-bound HTTP GET for RDAP.

Why not a plain `requests.get(timeout=...)`: its timeout is per socket operation, so a server that
drips one byte a second (in the headers or the body) holds the call for as long as it likes. Here every
call has one total deadline: a watchdog timer shuts the call's sockets down when it passes, which wakes
any blocked read (plain TCP and TLS alike). The body is capped at `max_bytes`, redirects are followed by
hand (capped, loops refused, only http/https), and every connection can be bound to a source address.

Failures raise `LookupFailed(reason)` with a short reason: "timeout", "response too large",
"redirect loop", "too many redirects", "bad redirect", "connection failed", "connection error".
"""
from __future__ import annotations

import email.utils
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError as Urllib3Error,
    NewConnectionError,
    ReadTimeoutError,
)

from .errors import LookupFailed

USER_AGENT = "certstream-scout (+rdap)"
RDAP_ACCEPT = "application/rdap+json, application/json;q=0.9"
REDIRECT_CODES = (301, 302, 303, 307, 308)
MAX_RETRY_AFTER = 86400.0


@dataclass
class HttpResponse:
    status: int
    headers: dict = field(default_factory=dict)  # lower-case header name -> value
    body: bytes = b""
    url: str = ""

    def text(self) -> str:
        return decode_text(self.body)


def decode_text(data: bytes) -> str:
    """UTF-8, falling back to replacement characters; NULs dropped (they upset JSON stores and logs)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
    return text.replace("\x00", "")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After: 120` or an HTTP date -> seconds (0..1 day), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


class _Tracker:
    """The sockets of one call; `kill()` shuts them all down (from the watchdog thread)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.expired = False

    def add(self, sock: socket.socket) -> None:
        # shutdown(2) acts on the connection, not the descriptor: shutting down a dup() wakes a read
        # blocked on the original, even after the original was handed to TLS (which detaches it).
        dup = sock.dup()
        with self._lock:
            if not self.expired:
                self._socks.append(dup)
                return
        _shutdown(dup)
        dup.close()
        raise LookupFailed("timeout")

    def kill(self) -> None:
        with self._lock:
            self.expired = True
            socks = list(self._socks)
        for s in socks:
            _shutdown(s)

    def close(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


def _shutdown(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_local = threading.local()


def _track(sock: socket.socket) -> socket.socket:
    tracker = getattr(_local, "tracker", None)
    if tracker is not None:
        try:
            tracker.add(sock)
        except LookupFailed:
            sock.close()
            raise
    return sock


class _TrackedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _track(super()._new_conn())


class _TrackedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _track(super()._new_conn())


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


def _pool_manager(source_ip: str | None) -> urllib3.PoolManager:
    kw = {}
    if source_ip:
        kw["source_address"] = (source_ip, 0)
    pm = urllib3.PoolManager(num_pools=4, maxsize=1, retries=False, **kw)
    pm.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}
    return pm


def http_get(url: str, *, timeout: float, max_bytes: int, source_ip: str | None = None,
             accept: str = RDAP_ACCEPT, max_redirects: int = 5,
             deadline: float | None = None) -> HttpResponse:
    """GET `url`, following redirects; the whole call (all hops) ends by `timeout` seconds from now
    (or by the monotonic `deadline`, whichever is earlier). Returns the final response whatever its
    status code; raises LookupFailed on transport failures, size and redirect limits."""
    end = time.monotonic() + timeout
    if deadline is not None:
        end = min(end, deadline)
    tracker = _Tracker()
    remaining = end - time.monotonic()
    if remaining <= 0:
        raise LookupFailed("timeout")
    watchdog = threading.Timer(remaining, tracker.kill)
    watchdog.daemon = True
    pm = _pool_manager(source_ip)
    previous = getattr(_local, "tracker", None)
    _local.tracker = tracker
    watchdog.start()
    try:
        seen: set[str] = set()
        current = url
        for _hop in range(max_redirects + 1):
            scheme = urlsplit(current).scheme.lower()
            if scheme not in ("http", "https"):
                raise LookupFailed("bad redirect")
            if current in seen:
                raise LookupFailed("redirect loop")
            seen.add(current)
            resp = _one_get(pm, current, end, tracker, accept, max_bytes)
            if tracker.expired:
                # The watchdog cut the connection: whatever was parsed is a truncated answer.
                raise LookupFailed("timeout")
            if resp.status in REDIRECT_CODES and resp.headers.get("location"):
                current = urljoin(current, resp.headers["location"].strip())
                continue
            return resp
        raise LookupFailed("too many redirects")
    finally:
        watchdog.cancel()
        _local.tracker = previous
        pm.clear()
        tracker.close()


def _one_get(pm: urllib3.PoolManager, url: str, end: float, tracker: _Tracker, accept: str,
             max_bytes: int) -> HttpResponse:
    remaining = end - time.monotonic()
    if remaining <= 0 or tracker.expired:
        raise LookupFailed("timeout")
    headers = {"Accept": accept, "User-Agent": USER_AGENT, "Accept-Encoding": "identity",
               "Connection": "close"}
    resp = None
    try:
        resp = pm.request("GET", url, headers=headers, preload_content=False, redirect=False,
                          retries=False, timeout=urllib3.Timeout(connect=remaining, read=remaining))
        hdrs = {k.lower(): v for k, v in resp.headers.items()}
        if resp.status in REDIRECT_CODES:
            return HttpResponse(resp.status, hdrs, b"", url)
        declared = hdrs.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise LookupFailed("response too large")
        body = bytearray()
        for chunk in resp.stream(65536, decode_content=True):
            body += chunk
            if len(body) > max_bytes:
                raise LookupFailed("response too large")
            if time.monotonic() > end:
                raise LookupFailed("timeout")
        return HttpResponse(resp.status, hdrs, bytes(body), url)
    except LookupFailed:
        raise
    except NewConnectionError as e:  # a subclass of ConnectTimeoutError in urllib3 2: refused is not slow
        if "timed out" in str(e).lower() or tracker.expired or time.monotonic() >= end:
            raise LookupFailed("timeout") from None
        raise LookupFailed("connection failed") from None
    except (ReadTimeoutError, ConnectTimeoutError, socket.timeout, TimeoutError):
        raise LookupFailed("timeout") from None
    except (Urllib3Error, OSError, ValueError) as e:
        if tracker.expired or time.monotonic() >= end:
            raise LookupFailed("timeout") from None
        if isinstance(e, NewConnectionError) or "NewConnectionError" in repr(e):
            raise LookupFailed("connection failed") from None
        raise LookupFailed("connection error") from None
    finally:
        if resp is not None:
            try:
                resp.close()
            except Exception:  # noqa: BLE001 - closing a broken response must not mask the result
                pass

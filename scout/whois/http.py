"""A bounded, source-bound HTTP GET for RDAP that connects only where scout.whois.targets allows.

Why not a plain `requests.get(timeout=...)`: its timeout is per socket operation, so a server that
drips one byte a second (in the headers or the body) holds the call for as long as it likes. Here every
call has one total deadline: a watchdog timer shuts the call's sockets down when it passes, which wakes
any blocked read (plain TCP and TLS alike). The body is capped at `max_bytes`, redirects are followed by
hand (capped, loops refused), and every connection can be bound to a source address.

Every URL goes through the lookup's `Guard`: the first one as trusted (configured by the operator) or
learned (a related link), every redirect as learned. The guard resolves the host through DNS_SERVER and
checks the addresses; the connection goes to one of those very addresses (no second resolution), while
TLS still sends and verifies the host name.

Failures raise `LookupFailed(reason)` with a short reason: "timeout", "response too large",
"redirect loop", "too many redirects", "connection failed", "connection error", "unknown host", "dns
timeout", or `TargetRefused` ("refused: <why>") for a target the guard refused.
"""
from __future__ import annotations

import email.utils
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin

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
from .targets import Guard, connect, host_key

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


def _pinned_conn(conn: HTTPConnection) -> socket.socket:
    """Connect to the address the guard checked for this request, never to a fresh resolution of the
    name (urllib3 would ask the system resolver, and an attacker's DNS could answer differently)."""
    pin = getattr(_local, "pin", None)
    if pin is None:
        raise LookupFailed("connection error")
    target, end, source_ip = pin
    if host_key(conn.host) != target.host or conn.port != target.port:
        raise LookupFailed("connection error")   # not the target this request was admitted for
    return _track(connect(target, end, source_ip))


class _TrackedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _pinned_conn(self)


class _TrackedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _pinned_conn(self)


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


def _pool_manager() -> urllib3.PoolManager:
    # No source_address here: _pinned_conn binds the socket itself.
    pm = urllib3.PoolManager(num_pools=4, maxsize=1, retries=False)
    pm.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}
    return pm


def http_get(url: str, *, guard: Guard, timeout: float, max_bytes: int, trusted: bool = True,
             accept: str = RDAP_ACCEPT, max_redirects: int = 5, deadline: float | None = None) -> HttpResponse:
    """GET `url` (trusted: configured by the operator; else learned from an answer), following
    redirects as learned targets; the whole call (all hops, name resolution included) ends by `timeout`
    seconds from now (or by the monotonic `deadline`, whichever is earlier). Connections bind to
    `guard.source_ip`. Returns the final response whatever its status code; raises LookupFailed on
    transport failures, size and redirect limits, TargetRefused for a refused target."""
    end = time.monotonic() + timeout
    if deadline is not None:
        end = min(end, deadline)
    tracker = _Tracker()
    remaining = end - time.monotonic()
    if remaining <= 0:
        raise LookupFailed("timeout")
    watchdog = threading.Timer(remaining, tracker.kill)
    watchdog.daemon = True
    pm = _pool_manager()
    previous = getattr(_local, "tracker", None), getattr(_local, "pin", None)
    _local.tracker = tracker
    watchdog.start()
    try:
        target = guard.trusted_url(url, end) if trusted else guard.learned_url(url, end)
        seen: set[str] = {url}
        current = url
        for _hop in range(max_redirects + 1):
            _local.pin = (target, end, guard.source_ip)
            resp = _one_get(pm, current, end, tracker, accept, max_bytes)
            if tracker.expired:
                # The watchdog cut the connection: whatever was parsed is a truncated answer.
                raise LookupFailed("timeout")
            if resp.status in REDIRECT_CODES and resp.headers.get("location"):
                current = urljoin(current, resp.headers["location"].strip())
                if current in seen:
                    raise LookupFailed("redirect loop")
                seen.add(current)
                target = guard.learned_url(current, end)
                continue
            return resp
        raise LookupFailed("too many redirects")
    finally:
        watchdog.cancel()
        _local.tracker, _local.pin = previous
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

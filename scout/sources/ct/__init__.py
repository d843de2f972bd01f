"""Reading Certificate Transparency logs directly (SOURCE=ct), without a certstream server.

Modules, in the order data flows through them:

- `loglist`   which logs exist (Chrome's v3 list), which are usable, the CT_LOGS filter;
- `rfc6962`   the classic API (`get-sth`, `get-entries`);
- `static`    the static-ct-api / tiled API (`checkpoint`, `tile/data/...`, `issuer/...`);
- `der`       the in-place DER walk (decode's fast path, and the producer's certificate de-duplication);
- `decode`    pure functions: log entry bytes -> certstream `certificate_update` frame;
- `malformed` what happens to input that does not decode;
- `health`    per-log status (`scout stats` ct_logs): position, behind, lag, errors, backoff, gaps;
- `state`     CT_STATE_FILE: positions, processed ranges and gaps (format v2, v1 still read);
- `reader`    `CTSource`: one worker thread per log, backoff, gaps, lag alert, state file, list refresh.

This module holds the small HTTP helper both protocol modules share: bounded, with timeouts.
"""
from __future__ import annotations

import zlib

import requests

from scout.sources.ct.malformed import CTError

USER_AGENT = "certstream-scout (+https://github.com/; CT monitor)"
DEFAULT_TIMEOUT = (5.0, 30.0)          # connect, read (seconds)
DEFAULT_MAX_BYTES = 32 << 20           # per response, after decompression
_GZIP_MAGIC = b"\x1f\x8b"


class HTTPStatusError(CTError):
    """A response with a status other than 200. `retry_after` is in seconds when the server gave one."""

    def __init__(self, status: int, url: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status = status
        self.url = url
        self.retry_after = retry_after


class TransportError(CTError):
    """Connection failure, timeout, or a response larger than allowed."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None   # an HTTP date: ignore it, our own backoff applies


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip `data`, refusing output beyond `max_bytes` (no decompression bombs)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, max_bytes + 1)
    except zlib.error as e:
        raise TransportError(f"bad gzip body: {e}") from None
    if len(out) > max_bytes or d.unconsumed_tail:
        raise TransportError(f"gzip body larger than {max_bytes} bytes")
    return out


class Fetcher:
    """GET with timeouts and a size cap. One per worker thread (a requests.Session is not shared)."""

    def __init__(self, timeout=DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept-Encoding"] = "gzip"

    def get(self, url: str, params: dict | None = None) -> bytes:
        """The body of a 200 response. Gzip is undone whether the server said so in a header or not."""
        try:
            with self.session.get(url, params=params, timeout=self.timeout, stream=True) as r:
                if r.status_code != 200:
                    raise HTTPStatusError(r.status_code, r.url, _retry_after(r.headers.get("Retry-After")))
                chunks, size = [], 0
                for chunk in r.iter_content(65536):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TransportError(f"response from {url} larger than {self.max_bytes} bytes")
                    chunks.append(chunk)
        except requests.RequestException as e:
            raise TransportError(f"{type(e).__name__} fetching {url}: {e}") from None
        body = b"".join(chunks)
        if body[:2] == _GZIP_MAGIC:      # stored gzip served without Content-Encoding (some tile buckets)
            body = gunzip(body, self.max_bytes)
        return body

    def close(self) -> None:
        self.session.close()

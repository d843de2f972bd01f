"""static-ct-api (C2SP) "tiled" logs, read through their monitoring URL.

- `<mon>/checkpoint`: a signed note — origin line, tree size, base64 root hash, then a blank line and
  signature lines (not verified here; see rfc6962.py).
- `<mon>/tile/data/<N>`: entries N*256 .. N*256+255; N is written in 3-digit groups with an `x` before
  all but the last (1234067 -> `x001/x234/067`). The last, incomplete tile is `<N>.p/<W>` (W = 1..255
  entries). Tiles may come gzip-compressed, with or without a Content-Encoding header (Fetcher undoes both).
- `<mon>/issuer/<hex sha256>`: a chain certificate named by a fingerprint in a tile entry.
"""
from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from scout.sources.ct import Fetcher, HTTPStatusError
from scout.sources.ct.malformed import MalformedResponse

TILE_WIDTH = 256


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes


def parse_checkpoint(body: bytes) -> Checkpoint:
    """A checkpoint note -> Checkpoint. Raises MalformedResponse."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedResponse("checkpoint is not UTF-8") from None
    note, sep, signatures = text.partition("\n\n")
    lines = note.split("\n")
    if not sep or len(lines) < 3 or not signatures.strip():
        raise MalformedResponse("checkpoint is not a signed note (origin, size, hash, blank line, signatures)")
    origin, size_text, hash_text = lines[0], lines[1], lines[2]
    if not origin or not size_text.isdigit() or (len(size_text) > 1 and size_text[0] == "0"):
        raise MalformedResponse(f"checkpoint tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(hash_text, validate=True)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise MalformedResponse("checkpoint root hash is not 32 base64-encoded bytes")
    return Checkpoint(origin, int(size_text), root)


def tile_path(n: int) -> str:
    """Tile index -> path element: 0 -> '000', 1234067 -> 'x001/x234/067'."""
    if n < 0:
        raise ValueError("tile index must be >= 0")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def data_tile_url(base_url: str, n: int, width: int = TILE_WIDTH) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError("tile width must be 1..256")
    url = f"{base_url.rstrip('/')}/tile/data/{tile_path(n)}"
    return url if width == TILE_WIDTH else f"{url}.p/{width}"


class IssuerCache:
    """Issuer certificates by SHA-256, shared by every tiled log (they share most issuers). Bounded."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._data: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = Lock()

    def get(self, fp: bytes) -> bytes | None:
        with self._lock:
            der = self._data.get(fp)
            if der is not None:
                self._data.move_to_end(fp)
            return der

    def put(self, fp: bytes, der: bytes) -> None:
        with self._lock:
            self._data[fp] = der
            if len(self._data) > self._size:
                self._data.popitem(last=False)


class StaticClient:
    def __init__(self, base_url: str, fetcher: Fetcher, issuers: IssuerCache | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.fetcher = fetcher
        self.issuers = issuers or IssuerCache()

    def checkpoint(self) -> Checkpoint:
        return parse_checkpoint(self.fetcher.get(f"{self.base_url}/checkpoint"))

    def data_tile(self, n: int, width: int) -> tuple[bytes, int]:
        """(tile bytes, number of entries they hold). A partial tile that is gone (the log filled it
        meanwhile) is read as the full tile, whose first `width` entries are the same."""
        try:
            return self.fetcher.get(data_tile_url(self.base_url, n, width)), width
        except HTTPStatusError as e:
            if e.status != 404 or width == TILE_WIDTH:
                raise
        return self.fetcher.get(data_tile_url(self.base_url, n)), TILE_WIDTH

    def issuer(self, fp: bytes) -> bytes | None:
        """The issuer certificate with SHA-256 `fp`, or None when the log does not have it (404) or serves
        something else. Transport errors propagate (the caller backs off)."""
        der = self.issuers.get(fp)
        if der is not None:
            return der
        try:
            der = self.fetcher.get(f"{self.base_url}/issuer/{fp.hex()}")
        except HTTPStatusError as e:
            if e.status == 404:
                return None
            raise
        if hashlib.sha256(der).digest() != fp:
            return None
        self.issuers.put(fp, der)
        return der

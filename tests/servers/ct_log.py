"""Local CT log servers for tests: an RFC 6962 log and a static-ct-api (tiled) log on 127.0.0.1.

Both serve real encodings of the entries they are given (MerkleTreeLeaf + extra_data for RFC 6962; data
tiles of TileLeaf for static-ct-api, optionally gzip-compressed, with issuers under /issuer/<sha256>),
real Merkle tree roots, and placeholder signatures (scout does not verify them). Faults can be injected:
status codes for the next N requests to a path (429 then recovery), a tile served truncated once, raw
bytes in place of an entry's leaf.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import serialization

X509_ENTRY, PRECERT_ENTRY = 0, 1
TILE_WIDTH = 256


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128   # socketserver's 5 drops concurrent connects (SYN retried after 1 s)


@dataclass
class LogItem:
    """One entry: an X.509 certificate or a precertificate (DER, with its poison), and its chain."""

    entry_type: int
    cert_der: bytes
    chain: list = field(default_factory=list)
    timestamp: int = 0                 # ms; 0 = now
    leaf_override: bytes | None = None  # RFC 6962: served instead of the real MerkleTreeLeaf

    def __post_init__(self) -> None:
        if not self.timestamp:
            self.timestamp = int(time.time() * 1000)


def _u(n: int, width: int) -> bytes:
    return n.to_bytes(width, "big")


def _vec(data: bytes, len_bytes: int) -> bytes:
    return _u(len(data), len_bytes) + data


_POISON_OID = bytes.fromhex("060a2b06010401d679020403")     # 1.3.6.1.4.1.11129.2.4.3


def _der_header(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, header length, content length) of the DER element at pos."""
    tag, first = buf[pos], buf[pos + 1]
    if first < 0x80:
        return tag, 2, first
    n = first & 0x7F
    return tag, 2 + n, int.from_bytes(buf[pos + 2:pos + 2 + n], "big")


def _der_children(buf: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(buf):
        _, hl, cl = _der_header(buf, pos)
        out.append(buf[pos:pos + hl + cl])
        pos += hl + cl
    return out


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + content


def _content(element: bytes) -> bytes:
    _, hl, cl = _der_header(element, 0)
    return element[hl:hl + cl]


def tbs_without_poison(precert_der: bytes) -> bytes:
    """The precertificate's TBSCertificate with the CT poison extension removed (RFC 6962 §3.2)."""
    tbs = _der_children(_content(precert_der))[0]
    fields = []
    for f in _der_children(_content(tbs)):
        if f[0] == 0xA3:                               # [3] EXPLICIT Extensions
            exts = [e for e in _der_children(_content(_content(f))) if _POISON_OID not in e[:20]]
            f = _der(0xA3, _der(0x30, b"".join(exts)))
        fields.append(f)
    return _der(0x30, b"".join(fields))


def precert_parts(precert_der: bytes, issuer_der: bytes) -> tuple[bytes, bytes]:
    """(issuer_key_hash, TBSCertificate without the poison) as RFC 6962 §3.2 logs them."""
    issuer = x509.load_der_x509_certificate(issuer_der)
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest(), tbs_without_poison(precert_der)


def timestamped_entry(item: LogItem, extensions: bytes = b"") -> bytes:
    head = _u(item.timestamp, 8) + _u(item.entry_type, 2)
    if item.entry_type == X509_ENTRY:
        body = _vec(item.cert_der, 3)
    else:
        ikh, tbs = precert_parts(item.cert_der, item.chain[0])
        body = ikh + _vec(tbs, 3)
    return head + body + _vec(extensions, 2)


def merkle_tree_leaf(item: LogItem, extensions: bytes = b"") -> bytes:
    return b"\x00\x00" + timestamped_entry(item, extensions)


def extra_data(item: LogItem) -> bytes:
    chain = _vec(b"".join(_vec(c, 3) for c in item.chain), 3)
    return chain if item.entry_type == X509_ENTRY else _vec(item.cert_der, 3) + chain


def leaf_index_extension(index: int) -> bytes:
    return _u(0, 1) + _vec(_u(index, 5), 2)


def tile_leaf(item: LogItem, index: int) -> bytes:
    out = timestamped_entry(item, leaf_index_extension(index))
    if item.entry_type == PRECERT_ENTRY:
        out += _vec(item.cert_der, 3)
    return out + _vec(b"".join(hashlib.sha256(c).digest() for c in item.chain), 2)


def merkle_root(leaf_hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash over already-hashed leaves."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    level = list(leaf_hashes)
    # Fold the largest power-of-two subtrees the RFC way (recursion on k = largest power of 2 < n).
    def mth(lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 1:
            return level[lo]
        k = 1
        while k * 2 < n:
            k *= 2
        return hashlib.sha256(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi)).digest()
    return mth(0, len(level))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:   # keep test output quiet
        pass

    def do_GET(self) -> None:               # noqa: N802
        srv: _LogServer = self.server.owner  # type: ignore[attr-defined]
        url = urlparse(self.path)
        srv.requests.append(url.path)
        fault = srv._take_fault(url.path)
        if fault is not None:
            status, retry_after = fault
            self._send(status, b'{"error":"injected"}', "application/json",
                       {"Retry-After": retry_after} if retry_after is not None else {})
            return
        if url.path in srv.files:
            body, ctype = srv.files[url.path]
            self._send(200, body, ctype)
            return
        try:
            result = srv.route(url.path, parse_qs(url.query))
        except Exception as e:                # a bug in a test server should show, not hang the client
            self._send(500, repr(e).encode(), "text/plain")
            return
        if result is None:
            self._send(404, b"not found", "text/plain")
            return
        status, body, ctype, headers = result
        self._send(status, body, ctype, headers)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _LogServer:
    """Common part: threads, entry list, injected faults, extra static files (e.g. a log list)."""

    def __init__(self, items: list[LogItem] | None = None, path: str = "/log") -> None:
        self.items: list[LogItem] = []
        self._leaf_hashes: list[bytes] = []
        self.lock = threading.Lock()
        self.prefix = path.rstrip("/")
        self.requests: deque = deque(maxlen=10000)
        self.files: dict[str, tuple[bytes, str]] = {}
        self._faults: list[list] = []   # [path prefix, deque of (status, retry_after)]
        self.httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self          # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        if items:
            self.append(items)

    @property
    def origin(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The log's base URL, with a trailing slash as log lists write it."""
        return f"{self.origin}{self.prefix}/"

    def append(self, items: list[LogItem]) -> None:
        with self.lock:
            for item in items:
                self.items.append(item)
                self._leaf_hashes.append(hashlib.sha256(b"\x00" + self._merkle_leaf(item)).digest())

    def _merkle_leaf(self, item: LogItem) -> bytes:
        if item.leaf_override is not None:
            return item.leaf_override
        try:
            return merkle_tree_leaf(item)
        except Exception:
            return b"\x00\x00" + item.cert_der          # a deliberately broken entry: hash something

    def size(self) -> int:
        with self.lock:
            return len(self.items)

    def root(self, size: int) -> bytes:
        with self.lock:
            return merkle_root(self._leaf_hashes[:size])

    def fail(self, path_prefix: str, statuses: list[int], retry_after: str | None = "0") -> None:
        """The next len(statuses) requests whose path starts with prefix (after the log's path) get these."""
        with self.lock:
            self._faults.append([self.prefix + path_prefix, deque((s, retry_after) for s in statuses)])

    def _take_fault(self, path: str):
        with self.lock:
            for prefix, q in self._faults:
                if path.startswith(prefix) and q:
                    return q.popleft()
        return None

    def route(self, path: str, query: dict):   # -> (status, body, content type, headers) or None
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class RFC6962Server(_LogServer):
    """get-sth and get-entries; returns at most `max_batch` entries per call, as real logs do."""

    def __init__(self, items=None, path: str = "/log", max_batch: int = 32) -> None:
        self.max_batch = max_batch
        super().__init__(items, path)

    def route(self, path, query):
        if path == self.prefix + "/ct/v1/get-sth":
            size = self.size()
            doc = {"tree_size": size, "timestamp": int(time.time() * 1000),
                   "sha256_root_hash": base64.b64encode(self.root(size)).decode(),
                   "tree_head_signature": base64.b64encode(b"\x04\x03\x00\x00").decode()}
            return 200, json.dumps(doc).encode(), "application/json", {}
        if path == self.prefix + "/ct/v1/get-entries":
            try:
                start, end = int(query["start"][0]), int(query["end"][0])
            except (KeyError, ValueError):
                return 400, b'{"error":"start and end required"}', "application/json", {}
            with self.lock:
                size = len(self.items)
                if start < 0 or end < start or start >= size:
                    return 400, b'{"error":"bad range"}', "application/json", {}
                chosen = self.items[start:min(end + 1, size, start + self.max_batch)]
            entries = [{"leaf_input": base64.b64encode(self._merkle_leaf(it)).decode(),
                        "extra_data": base64.b64encode(self._extra(it)).decode()} for it in chosen]
            return 200, json.dumps({"entries": entries}).encode(), "application/json", {}
        return None

    @staticmethod
    def _extra(item: LogItem) -> bytes:
        try:
            return extra_data(item)
        except Exception:
            return b""


def tile_index_path(n: int) -> str:
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if not n:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


class StaticCTServer(_LogServer):
    """checkpoint, tile/data/<N>[.p/<W>] and issuer/<sha256>.

    gzip: "header" (Content-Encoding: gzip), "raw" (gzip bytes without the header) or None.
    truncate_once: tile indexes whose first fetch is cut short mid-entry.
    """

    def __init__(self, items=None, path: str = "/tiled", gzip_mode: str | None = "header") -> None:
        self.gzip_mode = gzip_mode
        self.truncate_once: set[int] = set()
        self.raw_tile_leaves: dict[int, bytes] = {}      # index -> bytes served instead of the real leaf
        super().__init__(items, path)

    def route(self, path, query):
        p = self.prefix
        if path == p + "/checkpoint":
            size = self.size()
            origin = self.origin.split("//", 1)[1] + p
            note = f"{origin}\n{size}\n{base64.b64encode(self.root(size)).decode()}\n"
            sig = base64.b64encode(hashlib.sha256(origin.encode()).digest()[:4] + b"\x00" * 64).decode()
            return 200, f"{note}\n\u2014 {origin} {sig}\n".encode(), "text/plain; charset=utf-8", {}
        if path.startswith(p + "/issuer/"):
            want = path.rsplit("/", 1)[1]
            with self.lock:
                for it in self.items:
                    for c in it.chain:
                        if hashlib.sha256(c).hexdigest() == want:
                            return 200, c, "application/pkix-cert", {}
            return None
        if path.startswith(p + "/tile/data/"):
            return self._tile(path[len(p + "/tile/data/"):])
        return None

    def _tile(self, rest: str):
        width = TILE_WIDTH
        if ".p/" in rest:
            rest, w = rest.split(".p/", 1)
            if not w.isdigit() or not 1 <= int(w) < TILE_WIDTH:
                return None
            width = int(w)
        n = None
        for cand in range(0, self.size() // TILE_WIDTH + 2):
            if tile_index_path(cand) == rest:
                n = cand
                break
        if n is None:
            return None
        lo, hi = n * TILE_WIDTH, n * TILE_WIDTH + width
        with self.lock:
            if hi > len(self.items):
                return None
            body = b"".join(self.raw_tile_leaves.get(i) or tile_leaf(self.items[i], i) for i in range(lo, hi))
            if n in self.truncate_once:
                self.truncate_once.discard(n)
                body = body[: len(body) // 2 + 7]
        headers = {}
        if self.gzip_mode:
            body = gzip.compress(body)
            if self.gzip_mode == "header":
                headers["Content-Encoding"] = "gzip"
        return 200, body, "application/octet-stream", headers


def log_list(rfc6962: list[tuple[str, str, str]] = (), tiled: list[tuple[str, str, str]] = (),
             state: str = "usable") -> dict:
    """A Chrome v3 log list. Each log is (operator, description, url); tiled ones use url as monitoring_url."""
    ops: dict[str, dict] = {}

    def op(name):
        return ops.setdefault(name, {"name": name, "email": ["ct@example.invalid"], "logs": [], "tiled_logs": []})

    for i, (operator, desc, url) in enumerate(rfc6962):
        key = base64.b64encode(hashlib.sha256(url.encode()).digest()).decode()
        op(operator)["logs"].append({"description": desc, "log_id": key, "key": "MFkw" + key, "url": url,
                                     "mmd": 86400, "state": {state: {"timestamp": "2026-01-01T00:00:00Z"}}})
    for operator, desc, url in tiled:
        key = base64.b64encode(hashlib.sha256(url.encode()).digest()).decode()
        op(operator)["tiled_logs"].append({"description": desc, "log_id": key, "key": "MFkw" + key,
                                           "submission_url": url.replace("/tiled", "/submit"),
                                           "monitoring_url": url, "mmd": 60,
                                           "state": {state: {"timestamp": "2026-01-01T00:00:00Z"}}})
    return {"version": "test", "log_list_timestamp": "2026-11-01T00:00:00Z", "operators": list(ops.values())}

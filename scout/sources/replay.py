"""A certstream-server-go compatible replay server, for tests and benchmarks.

It serves a JSONL recording (one websocket frame per line, as written by `scout record`) on the same
endpoints as certstream-server-go:

    /full-stream    full frames, as recorded
    /               lite frames: `data.chain` and `data.leaf_cert.as_der` removed
    /domains-only   `{"data":[...all_domains...],"message_type":"dns_entries"}`

A trailing slash is accepted on each, and `<endpoint>/example.json` answers a plain HTTP GET with one
example frame. Which recorded frames go where:
- `certificate_update` frames go to all three endpoints (derived for `/` and `/domains-only`);
- `dns_entries` frames (a recording of /domains-only) go to `/domains-only` only;
- `heartbeat` frames (legacy CaliDog server) and frames of any other message type go everywhere;
- lines that are not a JSON object go everywhere *verbatim* (bytes as in the file, even invalid UTF-8),
  so bad-input tests can inject non-JSON, truncated or huge frames. `frames=[...]` injects a sequence
  of raw str/bytes frames without a file.

Each connection gets its own copy of the stream from the start of the recording (no broadcast): easy to
reason about in tests, and N benchmark clients each see every frame. `rate` (frames/s) paces each
connection on an absolute schedule (frame i is due at t0 + i/rate), so pacing does not drift; a client
more than one second behind loses the backlog instead of receiving a burst. `loop=True` starts over at the
end; otherwise the connection stays open and idle (the server keeps pinging) unless `close_at_end=True`.

Like the real server it pings every 30 s (`ping_interval`), answers pings (websockets does), and, when
`idle_timeout` is set (the real server uses 65 s), closes with code 1008 a client from which nothing at
all (no ping, pong or message) arrived for that long. Pongs to our own pings count, as they do for the
real server. The recording is held in memory.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
import time
from typing import Iterable

from websockets.asyncio.server import ServerConnection, serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from scout.sources.recording import recording_lines

log = logging.getLogger(__name__)

ENDPOINTS = ("full", "lite", "domains")
_PATH_TO_ENDPOINT = {"/full-stream": "full", "": "lite", "/domains-only": "domains"}
_ENDPOINT_PATH = {"full": "/full-stream", "lite": "/", "domains": "/domains-only"}


# -- pure frame derivation ------------------------------------------------------------------------------

def to_lite(frame: dict) -> dict:
    """The lite form of a full `certificate_update` frame: a copy without `data.chain` and
    `data.leaf_cert.as_der` (key order kept). Other frames are returned unchanged."""
    data = frame.get("data")
    if frame.get("message_type") != "certificate_update" or not isinstance(data, dict):
        return frame
    data = {k: v for k, v in data.items() if k != "chain"}
    leaf = data.get("leaf_cert")
    if isinstance(leaf, dict):
        data["leaf_cert"] = {k: v for k, v in leaf.items() if k != "as_der"}
    return {**frame, "data": data}


def to_domains_only(frame: dict) -> dict | None:
    """The /domains-only form of a frame: `{"data": all_domains, "message_type": "dns_entries"}` for a
    `certificate_update`, a `dns_entries` frame unchanged, None for anything else."""
    mt = frame.get("message_type")
    if mt == "dns_entries":
        return frame
    if mt != "certificate_update":
        return None
    data = frame.get("data")
    leaf = data.get("leaf_cert") if isinstance(data, dict) else None
    domains = leaf.get("all_domains") if isinstance(leaf, dict) else None
    return {"data": list(domains) if isinstance(domains, list) else [], "message_type": "dns_entries"}


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def derive_frame(raw: bytes | str, endpoint: str) -> bytes | None:
    """What endpoint ("full", "lite" or "domains") sends for one recorded frame; None = not sent there."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw                      # not JSON: verbatim everywhere
    if not isinstance(obj, dict):
        return raw
    mt = obj.get("message_type")
    if mt == "certificate_update":
        if endpoint == "full":
            return raw
        return _dumps(to_lite(obj) if endpoint == "lite" else to_domains_only(obj))
    if mt == "dns_entries":
        return raw if endpoint == "domains" else None
    return raw                          # heartbeat and unknown types: everywhere


def endpoint_for_path(path: str) -> str | None:
    """'/full-stream', '/full-stream/', '/', '/domains-only/?x=1' ... -> 'full' | 'lite' | 'domains' | None."""
    p = path.split("?", 1)[0].rstrip("/")
    return _PATH_TO_ENDPOINT.get(p)


def load_frames(path) -> list[bytes]:
    """The non-empty lines of a recording, as bytes (verbatim)."""
    return list(recording_lines(path))


# -- the server -----------------------------------------------------------------------------------------

class _Connection(ServerConnection):
    """Remembers when anything last arrived from the client (for the idle rule)."""

    last_rx: float = 0.0

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        super().data_received(data)


class ReplayServer:
    """The replay server in a background thread.

    `start()` returns once it is listening (`.port` is then the real port, also when 0 was asked);
    `stop()` closes every connection with 1001 (or `stop(abort=True)` drops the TCP connections without a
    close frame, like a crash) and frees the port; `start()` again listens on the same port.
    Counters: `.connections`, `.frames_sent`, `.idle_closes`.
    """

    def __init__(self, path=None, host: str = "127.0.0.1", port: int = 0, *, rate: float | None = None,
                 loop: bool = False, frames: Iterable[str | bytes] | None = None,
                 ping_interval: float | None = 30.0, idle_timeout: float | None = None,
                 close_at_end: bool = False, write_limit: int = 1 << 20) -> None:
        if (path is None) == (frames is None):
            raise ValueError("give exactly one of path or frames")
        if frames is not None:
            lines = [f.encode("utf-8") if isinstance(f, str) else bytes(f) for f in frames]
        else:
            lines = load_frames(path)
        self.path = path
        self.host = host
        self._port = int(port)
        self.rate = float(rate) if rate else None
        self.loop = bool(loop)
        self.ping_interval = ping_interval or None
        self.idle_timeout = idle_timeout or None
        self.close_at_end = close_at_end
        self.write_limit = write_limit
        self.frames: dict[str, list[bytes]] = {ep: [] for ep in ENDPOINTS}
        for raw in lines:
            for ep in ENDPOINTS:
                out = derive_frame(raw, ep)
                if out is not None:
                    self.frames[ep].append(out)
        self.connections = 0
        self.frames_sent = 0
        self.idle_closes = 0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._astop: asyncio.Event | None = None
        self._abort = False

    # -- control from any thread --

    @property
    def port(self) -> int:
        return self._port

    def url(self, path: str = "/full-stream") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self._port}{path}"

    def start(self, timeout: float = 10.0) -> "ReplayServer":
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("replay server already running")
        self._ready.clear()
        self._error = None
        self._abort = False
        self._thread = threading.Thread(target=self._thread_main, name="replay-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("replay server did not start")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        return self

    def stop(self, timeout: float = 10.0, abort: bool = False) -> None:
        thread, aloop, astop = self._thread, self._aloop, self._astop
        if thread is None:
            return
        self._abort = abort
        if aloop is not None and astop is not None:
            try:
                aloop.call_soon_threadsafe(astop.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the event loop thread --

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            if not self._ready.is_set():
                self._error = exc
            else:
                log.exception("replay server failed")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._aloop = asyncio.get_running_loop()
        self._astop = asyncio.Event()
        server = await ws_serve(
            self._handler, self.host, self._port,
            process_request=self._process_request,
            compression=None,
            ping_interval=self.ping_interval, ping_timeout=None,
            close_timeout=2, write_limit=self.write_limit,
            create_connection=_Connection, logger=logging.getLogger(__name__ + ".ws"),
        )
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._astop.wait()
        finally:
            if self._abort:
                for conn in list(server.connections):
                    conn.transport.abort()
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), 5)
            except asyncio.TimeoutError:
                log.warning("replay server: connections did not close in time")

    def _process_request(self, conn, request):
        path = request.path.split("?", 1)[0]
        if path.rstrip("/").endswith("/example.json"):
            ep = endpoint_for_path(path.rstrip("/")[: -len("/example.json")])
            if ep is not None:
                body = self.example(ep)
                if body is not None:
                    return Response(200, "OK", Headers([("Content-Type", "application/json"),
                                                        ("Content-Length", str(len(body))),
                                                        ("Connection", "close")]), body)
        elif endpoint_for_path(path) is not None:
            return None  # go on with the websocket handshake
        body = b"404 page not found\n"
        return Response(404, "Not Found", Headers([("Content-Type", "text/plain; charset=utf-8"),
                                                   ("Content-Length", str(len(body))),
                                                   ("Connection", "close")]), body)

    def example(self, endpoint: str) -> bytes | None:
        """One example frame of the endpoint: the first certificate (or dns_entries) frame."""
        want = "dns_entries" if endpoint == "domains" else "certificate_update"
        for raw in self.frames[endpoint]:
            if b'"message_type"' in raw:
                try:
                    if json.loads(raw).get("message_type") == want:
                        return raw
                except (ValueError, AttributeError):
                    continue
        return None

    async def _handler(self, conn: _Connection) -> None:
        frames = self.frames[endpoint_for_path(conn.request.path) or "full"]
        self.connections += 1
        conn.last_rx = time.monotonic()
        helpers = [asyncio.create_task(self._drain(conn))]
        if self.idle_timeout:
            helpers.append(asyncio.create_task(self._idle_watch(conn)))
        try:
            await self._stream(conn, frames)
            if self.close_at_end:
                await conn.close(1000, "end of recording")
            else:
                await conn.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            for t in helpers:
                t.cancel()

    async def _drain(self, conn) -> None:
        """Read (and discard) what the client sends, so its pings keep being processed."""
        try:
            async for _ in conn:
                pass
        except ConnectionClosed:
            pass

    async def _idle_watch(self, conn: _Connection) -> None:
        limit = self.idle_timeout
        step = min(1.0, limit / 4)
        while True:
            await asyncio.sleep(step)
            if time.monotonic() - conn.last_rx > limit:
                self.idle_closes += 1
                log.info("closing a client silent for %.1f s (1008)", limit)
                await conn.close(1008, "no ping/pong received")
                return

    async def _stream(self, conn, frames: list[bytes]) -> None:
        n = len(frames)
        if n == 0:
            return
        send = conn.send
        if not self.rate:
            while True:
                for f in frames:
                    await send(f, text=True)
                    self.frames_sent += 1
                if not self.loop:
                    return
        aloop = asyncio.get_running_loop()
        rate = self.rate
        t0 = aloop.time()
        sent = 0
        while True:
            now = aloop.time()
            due = int((now - t0) * rate) + 1
            if due - sent > max(1.0, rate):  # more than a second behind: forget the backlog
                t0 = now - sent / rate
                due = sent + 1
            while sent < due:
                await send(frames[sent % n], text=True)
                sent += 1
                self.frames_sent += 1
                if sent >= n and not self.loop:
                    return
            delay = t0 + sent / rate - aloop.time()
            if delay > 0:
                await asyncio.sleep(delay)


def serve(path, host: str = "127.0.0.1", port: int = 8080, rate: float | None = None, loop: bool = False,
          stop_event: threading.Event | None = None, ready_event: threading.Event | None = None,
          **options) -> None:
    """Run a replay server until stop_event is set (or Ctrl-C). `options` go to ReplayServer."""
    server = ReplayServer(path, host, port, rate=rate, loop=loop, **options).start()
    log.info("replaying %s on %s (%d frames on /full-stream)", path, server.url(""), len(server.frames["full"]))
    if ready_event is not None:
        ready_event.set()
    stop_event = stop_event if stop_event is not None else threading.Event()
    try:
        while not stop_event.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main_replay(argv) -> int:
    """`scout replay-server FILE --port P [--host H] [--rate N] [--loop] [--idle-timeout S] [--close-at-end]`"""
    p = argparse.ArgumentParser(prog="scout replay-server",
                                description="Serve a JSONL recording like certstream-server-go does.")
    p.add_argument("file", help="JSONL recording, one frame per line (.gz accepted)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--rate", type=float, default=None, help="frames per second per client (default: as fast as possible)")
    p.add_argument("--loop", action="store_true", help="start over at the end of the recording")
    p.add_argument("--idle-timeout", type=float, default=None,
                   help="close clients silent for this many seconds with 1008 (the real server: 65)")
    p.add_argument("--ping-interval", type=float, default=30.0, help="server pings, seconds (0 = off)")
    p.add_argument("--close-at-end", action="store_true", help="close each connection after the last frame")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.rate is not None and args.rate <= 0:
        print("scout replay-server: --rate must be > 0", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            server = ReplayServer(args.file, args.host, args.port, rate=args.rate, loop=args.loop,
                                  ping_interval=args.ping_interval, idle_timeout=args.idle_timeout,
                                  close_at_end=args.close_at_end).start()
        except OSError as exc:
            print(f"scout replay-server: {exc}", file=sys.stderr)
            return 2
        n = {ep: len(server.frames[ep]) for ep in ENDPOINTS}
        base = server.url("")
        print(f"replaying {args.file}: {n['full']} frames on {base}/full-stream, {n['lite']} on {base}/, "
              f"{n['domains']} on {base}/domains-only"
              f"{f' at {args.rate:g}/s' if args.rate else ''}{' (looping)' if args.loop else ''}",
              file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        server.stop()
        print(f"replay server stopped: {server.connections} connection(s), {server.frames_sent} frames sent",
              file=sys.stderr)
        return 0
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)

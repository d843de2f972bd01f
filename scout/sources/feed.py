"""The certstream websocket client (recordings of the same frames: scout.sources.recording).

`WebSocketFeed` connects to a certstream-server-go endpoint (or our replay server), reads text frames and
hands each raw frame (a `str`, not parsed) to a `queue.Queue` with `put_nowait`. The read loop never waits
for the consumer: when the queue is full the frame is dropped and counted, exactly as certstream-server-go
itself drops frames for a slow reader (it keeps 300 per client), because a blocked reader would only move
the loss to the server and, worse, stop our pings.

Keep-alive and failure detection:
- a websocket ping is sent every `ping_interval` seconds (the server closes clients that sent no ping/pong
  for 65 s, code 1008); pings from the server are answered by websocket-client;
- the connection is declared dead when, after a ping, neither the pong nor any other frame arrives within
  `ping_timeout` seconds, or when nothing at all arrived for `idle_timeout` seconds (default
  ping_interval + ping_timeout; 90 s when pings are off);
- a handshake that does not finish within `connect_timeout` seconds counts as a connect error.
After a lost connection or a failed attempt the feed waits (exponential backoff from `backoff_min`,
doubling up to `backoff_max`, times a random factor 1.0-1.25) and connects again. The delay goes back to
`backoff_min` after a connection that stayed up for `stable_after` seconds.

Counters (`scout.counters.Counters`): frames, bytes, frames_dropped_buffer, frames_skipped_binary,
frames_too_large, reconnects (successful connections after the first one), connect_errors (attempts that
failed before the handshake completed), disconnects (established connections that ended, for any reason
other than stop()), dead_connections (of those, the ones we closed ourselves for silence).
"""
from __future__ import annotations

import logging
import queue
import random
import socket
import struct
import threading
import time
from typing import Callable

import websocket
from websocket._abnf import ABNF, frame_buffer

from scout.config import redact_url

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
_DROP_LOG_INTERVAL = 60.0


class _CappedFrameBuffer(frame_buffer):
    """websocket-client's frame reader with a cap on the size of one message.

    The payload of a message that would exceed `max_message` bytes (summed over its fragments) is read
    from the socket in chunks and thrown away, so a huge frame costs no memory and the connection stays
    usable. The message is then delivered as empty and `last_oversize` tells the caller to skip it.
    All state lives on the object, so a socket timeout in the middle of a frame can simply be retried.
    """

    def __init__(self, recv_fn, skip_utf8_validation: bool, max_message: int) -> None:
        self.max_message = max_message
        self.msg_bytes = 0
        self.last_oversize = False
        self._accounted = False
        self._remaining = 0
        super().__init__(recv_fn, skip_utf8_validation)

    def clear(self) -> None:
        super().clear()
        self._accounted = False
        self._remaining = 0

    def recv_frame(self) -> ABNF:
        if self.needs_header():
            self.recv_header()
        if self.needs_length():
            self.recv_length()
        fin, _r1, _r2, _r3, opcode, _mask, _ = self.header
        if opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
            if not self._accounted:
                if opcode != ABNF.OPCODE_CONT:
                    self.msg_bytes = 0
                    self.last_oversize = False
                self.msg_bytes += self.length
                if self.msg_bytes > self.max_message:
                    self.last_oversize = True
                self._accounted = True
                self._remaining = self.length
            if self.last_oversize:
                if self.needs_mask():
                    self.recv_mask()
                while self._remaining > 0:
                    chunk = self.recv(min(1 << 16, self._remaining))
                    if not isinstance(chunk, bytes) or not chunk:
                        raise websocket.WebSocketConnectionClosedException("connection closed in a frame")
                    self._remaining -= len(chunk)
                self.clear()
                return ABNF(fin, 0, 0, 0, opcode, 0, b"")
        return super().recv_frame()


class WebSocketFeed:
    """Reads a certstream websocket into `out_queue` until `stop_event` is set. See the module docstring.

    `on_connect`, if given, is called with no arguments after every successful handshake (in the feed's
    thread; exceptions are logged and ignored).
    """

    def __init__(self, url: str, out_queue: queue.Queue, counters, stop_event: threading.Event | None = None,
                 *, ping_interval: float = 20.0, ping_timeout: float = 10.0, backoff_min: float = 1.0,
                 backoff_max: float = 60.0, on_connect: Callable[[], None] | None = None,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, connect_timeout: float = 10.0,
                 idle_timeout: float | None = None, stable_after: float = 10.0) -> None:
        self.url = url
        self.out_queue = out_queue
        self.counters = counters
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.ping_interval = float(ping_interval or 0.0)
        self.ping_timeout = float(ping_timeout)
        self.backoff_min = float(backoff_min)
        self.backoff_max = max(float(backoff_max), self.backoff_min)
        self.on_connect = on_connect
        self.max_frame_bytes = int(max_frame_bytes)
        self.connect_timeout = float(connect_timeout)
        if idle_timeout is None:
            idle_timeout = self.ping_interval + self.ping_timeout if self.ping_interval > 0 else 90.0
        self.idle_timeout = float(idle_timeout)
        self.stable_after = float(stable_after)
        # How long one blocking recv may wait before the loop looks at the clock (pings, stop, deadlines).
        poll = 1.0
        if self.ping_interval > 0:
            poll = min(poll, self.ping_interval / 2)
        self._poll = max(0.05, min(poll, self.ping_timeout / 2, self.idle_timeout / 2))
        self._ws: websocket.WebSocket | None = None
        self._ws_lock = threading.Lock()
        self._dropped_since_log = 0
        self._last_drop_log = 0.0
        self.connected = threading.Event()   # set while a connection is up (handy for tests and health)

    # -- public ------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Connect, read and reconnect until stop_event is set. Blocks; returns only after stop."""
        delay = self.backoff_min
        connections = 0
        while not self.stop_event.is_set():
            ws = self._connect()
            if ws is None:
                if self.stop_event.is_set():
                    break
                self.counters.incr("connect_errors")
                delay = self._backoff(delay)
                continue
            connections += 1
            if connections > 1:
                self.counters.incr("reconnects")
            started = time.monotonic()
            self.connected.set()
            if self.on_connect is not None:
                try:
                    self.on_connect()
                except Exception:
                    log.exception("on_connect callback failed")
            try:
                reason = self._read_loop(ws)
            finally:
                self.connected.clear()
                self._close(ws)
            if self.stop_event.is_set():
                break
            self.counters.incr("disconnects")
            up = time.monotonic() - started
            log.warning("certstream connection to %s lost after %.1f s: %s", redact_url(self.url), up, reason)
            if up >= self.stable_after:
                delay = self.backoff_min
            delay = self._backoff(delay)
        self._flush_drop_log(force=True)
        log.info("certstream feed from %s stopped", redact_url(self.url))

    def stop(self) -> None:
        """Ask run() to return; interrupts a blocking recv at once by closing the socket."""
        self.stop_event.set()
        with self._ws_lock:
            ws = self._ws
        if ws is None:
            return
        if ws.connected:
            try:
                ws.send_close(websocket.STATUS_NORMAL)
            except Exception:
                pass
        sock = ws.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- internals ---------------------------------------------------------------------------------------

    def _backoff(self, delay: float) -> float:
        """Sleep `delay` (with jitter) unless stopped; return the next delay."""
        self.stop_event.wait(delay * random.uniform(1.0, 1.25))
        return min(delay * 2, self.backoff_max)

    def _connect(self) -> websocket.WebSocket | None:
        ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
        try:
            ws.frame_buffer = _CappedFrameBuffer(ws._recv, True, self.max_frame_bytes)
        except AttributeError:  # a websocket-client without these internals: the cap is checked after the fact
            pass
        with self._ws_lock:
            self._ws = ws
        if self.stop_event.is_set():
            return None
        try:
            ws.connect(self.url, timeout=self.connect_timeout)
            ws.settimeout(self._poll)
        except Exception as exc:  # refused, DNS, handshake status, timeout, TLS ...
            if not self.stop_event.is_set():
                log.warning("cannot connect to certstream %s: %s", redact_url(self.url), exc or type(exc).__name__)
            self._close(ws)
            return None
        log.info("connected to certstream %s", redact_url(self.url))
        return ws

    def _close(self, ws: websocket.WebSocket) -> None:
        with self._ws_lock:
            if self._ws is ws:
                self._ws = None
        try:
            ws.shutdown()
        except Exception:
            pass

    def _read_loop(self, ws: websocket.WebSocket) -> str:
        """Read until the connection ends; return why it ended."""
        put = self.out_queue.put_nowait
        incr = self.counters.incr
        fb = ws.frame_buffer
        capped = isinstance(fb, _CappedFrameBuffer)
        now = time.monotonic()
        last_rx = now
        last_ping = now if self.ping_interval <= 0 else now - self.ping_interval  # first ping at once
        ping_sent_at = None   # set while we wait for an answer to our ping
        while not self.stop_event.is_set():
            now = time.monotonic()
            if self.ping_interval > 0 and now - last_ping >= self.ping_interval:
                try:
                    ws.ping(struct.pack("!d", time.time()))
                except Exception as exc:
                    return f"ping failed: {exc}"
                last_ping = now
                if ping_sent_at is None:
                    ping_sent_at = now
            if ping_sent_at is not None and now - ping_sent_at > self.ping_timeout:
                incr("dead_connections")
                return f"no pong or data within {self.ping_timeout:g} s of a ping"
            if now - last_rx > self.idle_timeout:
                incr("dead_connections")
                return f"nothing received for {self.idle_timeout:g} s"
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except socket.timeout:
                continue
            except websocket.WebSocketConnectionClosedException:
                return "connection closed by peer"
            except Exception as exc:  # protocol errors, resets, shutdown by stop()
                return f"{type(exc).__name__}: {exc}"
            last_rx = time.monotonic()
            ping_sent_at = None  # anything from the server proves the connection is alive
            if opcode == ABNF.OPCODE_TEXT:
                if capped and fb.last_oversize:
                    incr("frames_too_large")
                    continue
                if len(data) > self.max_frame_bytes:
                    incr("frames_too_large")
                    continue
                incr("frames_received")
                incr("bytes", len(data))
                try:
                    put(data.decode("utf-8", errors="replace"))
                except queue.Full:
                    self._count_drop()
            elif opcode == ABNF.OPCODE_BINARY:
                incr("frames_skipped_binary")
            elif opcode == ABNF.OPCODE_CLOSE:
                payload = data if isinstance(data, bytes) else b""
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                text = payload[2:].decode("utf-8", errors="replace")
                return f"server closed the connection (code {code}{', ' + text if text else ''})"
            # pings (already answered) and pongs need nothing more
        return "stopped"

    def _count_drop(self) -> None:
        self.counters.incr("frames_dropped_buffer")
        self._dropped_since_log += 1
        self._flush_drop_log()

    def _flush_drop_log(self, force: bool = False) -> None:
        if not self._dropped_since_log:
            return
        now = time.monotonic()
        if force or now - self._last_drop_log >= _DROP_LOG_INTERVAL:
            log.warning("frame buffer full: dropped %d frame(s) from %s (consumer too slow)",
                        self._dropped_since_log, self.url)
            self._dropped_since_log = 0
            self._last_drop_log = now

"""`scout record FILE`: save the live feed as a JSONL recording, one frame per line.

The recording is what `scout replay-server` and the `file` source read. Frames come from the certstream
websocket (`--url`, default CERTSTREAM_URL) through `WebSocketFeed`, or, when SOURCE=ct and no `--url`
is given, straight from the CT logs through `scout.sources.ct.reader.CTSource`. Frames are written as received
(a pretty-printed JSON frame is re-serialised on one line; a non-JSON frame containing a line break
is skipped and counted). The file is flushed every second; recording stops at SIGINT/SIGTERM,
`--max-frames` or `--duration`, and a summary line goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import sys
import threading
import time

from scout.config import ConfigError, get_settings
from scout.counters import Counters
from scout.sources.live import start_feed

log = logging.getLogger(__name__)

_FLUSH_INTERVAL = 1.0


def _one_line(frame: str) -> str | None:
    if "\n" not in frame and "\r" not in frame:
        return frame
    try:
        return json.dumps(json.loads(frame), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return None


def main_record(argv) -> int:
    """`scout record FILE [--url URL] [--max-frames N] [--duration S] [--append]`; returns the exit code."""
    args = _parse_args(argv)
    if isinstance(args, int):
        return args
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"scout record: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    problem = _source_problem(args.url, settings)
    if problem:
        print(f"scout record: {problem}", file=sys.stderr)
        return 2
    try:
        out = sys.stdout if args.file == "-" else open(args.file, "a" if args.append else "w", encoding="utf-8")
    except OSError as exc:
        print(f"scout record: {exc}", file=sys.stderr)
        return 1
    return _record(args, settings, out)


def _parse_args(argv):
    """The parsed options, or an exit code (2 for a bad option, 0 after --help)."""
    p = argparse.ArgumentParser(prog="scout record", description="Record the certstream feed to a JSONL file.")
    p.add_argument("file", help="output file ('-' for stdout)")
    p.add_argument("--url", default=None, help="websocket URL (default: CERTSTREAM_URL)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--append", action="store_true", help="append to FILE instead of replacing it")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.max_frames is not None and args.max_frames < 1:
        print("scout record: --max-frames must be >= 1", file=sys.stderr)
        return 2
    if args.duration is not None and args.duration <= 0:
        print("scout record: --duration must be > 0", file=sys.stderr)
        return 2
    return args


def _source_problem(url_option: str | None, settings) -> str | None:
    url = url_option or settings.certstream_url
    if not url and not (url_option is None and settings.source == "ct"):
        return "no feed to record: give --url or set CERTSTREAM_URL (or SOURCE=ct)"
    if url and not url.startswith(("ws://", "wss://")):
        return f"--url {url!r}: expected a ws:// or wss:// URL"
    return None


def _record(args, settings, out) -> int:
    """Copy the source's frames to `out` until a signal, --max-frames or --duration; print the summary."""
    counters, stop = Counters(), threading.Event()
    frames: queue.Queue = queue.Queue(maxsize=max(1000, settings.frame_buffer))
    old_handlers = _stop_on_signals(stop)
    source_name = "CT logs" if args.url is None and settings.source == "ct" else (args.url or settings.certstream_url)
    started = time.monotonic()
    tally = {"written": 0, "skipped": 0, "bytes": 0}
    error = None
    print(f"recording {source_name} to {args.file}", file=sys.stderr, flush=True)
    thread, stopper = start_feed(settings, frames, counters, stop, url=args.url, stop_when_done=True)
    try:
        _copy(frames, out, stop, tally, args.max_frames, started + args.duration if args.duration else None)
    except OSError as exc:
        error = exc
    finally:
        stop.set()
        stopper()
        thread.join(10)
        try:
            out.flush()
            if out is not sys.stdout:
                out.close()
        except OSError as exc:
            error = error or exc
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    return _summary(args.file, tally, counters.snapshot(), time.monotonic() - started, error)


def _stop_on_signals(stop: threading.Event) -> dict:
    """SIGINT/SIGTERM set `stop` (main thread only); -> the handlers they replaced."""
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, _frame):
            log.info("signal %s: stopping", signum)
            stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, on_signal)
    return old_handlers


def _copy(frames: queue.Queue, out, stop: threading.Event, tally: dict, max_frames: int | None,
          deadline: float | None) -> None:
    """Write frames as lines, flushing every second, until the end; `tally` counts as it goes."""
    last_flush = time.monotonic()
    while True:
        if max_frames is not None and tally["written"] >= max_frames:
            return
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        if stop.is_set() and frames.empty():
            return
        try:
            frame = frames.get(timeout=0.2)
        except queue.Empty:
            frame = None
        if frame is not None:
            line = _one_line(frame)
            if line is None:
                tally["skipped"] += 1
            else:
                out.write(line)
                out.write("\n")
                tally["written"] += 1
                tally["bytes"] += len(line) + 1
        if now - last_flush >= _FLUSH_INTERVAL:
            out.flush()
            last_flush = now


def _summary(file: str, tally: dict, c: dict, elapsed: float, error) -> int:
    print(f"recorded {tally['written']} frame(s), {tally['bytes']} bytes, to {file} in {elapsed:.1f} s"
          f" (skipped {tally['skipped']} multi-line, dropped {c.get('frames_dropped_buffer', 0)},"
          f" reconnects {c.get('reconnects', 0)}, connect errors {c.get('connect_errors', 0)})",
          file=sys.stderr, flush=True)
    if error is not None:
        print(f"scout record: {error}", file=sys.stderr)
        return 1
    if tally["written"] == 0 and c.get("connect_errors", 0) and not c.get("frames_received", 0):
        return 1
    return 0

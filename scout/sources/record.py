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

from scout.counters import Counters

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

    from scout.config import ConfigError, get_settings
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"scout record: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = args.url or settings.certstream_url
    use_ct = not args.url and settings.source == "ct"
    if not url and not use_ct:
        print("scout record: no feed to record: give --url or set CERTSTREAM_URL (or SOURCE=ct)", file=sys.stderr)
        return 2
    if url and not url.startswith(("ws://", "wss://")):
        print(f"scout record: --url {url!r}: expected a ws:// or wss:// URL", file=sys.stderr)
        return 2

    try:
        out = sys.stdout if args.file == "-" else open(args.file, "a" if args.append else "w", encoding="utf-8")
    except OSError as exc:
        print(f"scout record: {exc}", file=sys.stderr)
        return 1

    counters = Counters()
    stop = threading.Event()
    frames: queue.Queue = queue.Queue(maxsize=max(1000, settings.frame_buffer))

    if use_ct:
        def on_frame(frame: dict) -> None:
            line = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
            while not stop.is_set():       # CT is pulled, so wait rather than drop
                try:
                    frames.put(line, timeout=0.5)
                    return
                except queue.Full:
                    continue

        def run_source() -> None:
            from scout.sources.ct.reader import CTSource
            try:
                CTSource(settings, on_frame, stop, counters).run()
            finally:
                stop.set()
        source_name = "CT logs"
        stopper = stop.set
    else:
        from scout.sources.feed import WebSocketFeed
        feed = WebSocketFeed(url, frames, counters, stop)

        def run_source() -> None:
            try:
                feed.run()
            finally:
                stop.set()
        source_name = url
        stopper = feed.stop

    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, _frame):
            log.info("signal %s: stopping", signum)
            stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, on_signal)

    thread = threading.Thread(target=run_source, name="record-source", daemon=True)
    started = time.monotonic()
    deadline = started + args.duration if args.duration else None
    written = skipped = nbytes = 0
    last_flush = started
    error = None
    print(f"recording {source_name} to {args.file}", file=sys.stderr, flush=True)
    thread.start()
    try:
        while True:
            if args.max_frames is not None and written >= args.max_frames:
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if stop.is_set() and frames.empty():
                break
            try:
                frame = frames.get(timeout=0.2)
            except queue.Empty:
                frame = None
            if frame is not None:
                line = _one_line(frame)
                if line is None:
                    skipped += 1
                else:
                    out.write(line)
                    out.write("\n")
                    written += 1
                    nbytes += len(line) + 1
            if now - last_flush >= _FLUSH_INTERVAL:
                out.flush()
                last_flush = now
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

    elapsed = time.monotonic() - started
    c = counters.snapshot()
    print(f"recorded {written} frame(s), {nbytes} bytes, to {args.file} in {elapsed:.1f} s"
          f" (skipped {skipped} multi-line, dropped {c.get('frames_dropped_buffer', 0)},"
          f" reconnects {c.get('reconnects', 0)}, connect errors {c.get('connect_errors', 0)})",
          file=sys.stderr, flush=True)
    if error is not None:
        print(f"scout record: {error}", file=sys.stderr)
        return 1
    if written == 0 and c.get("connect_errors", 0) and not c.get("frames_received", 0):
        return 1
    return 0

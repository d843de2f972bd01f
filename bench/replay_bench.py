"""Replay server pacing: how closely `scout replay-server --rate N` keeps N frames/s to one client, beside
what the same server sends unpaced to the same client in the same run (the headroom pacing works within).

    python -m bench --only replay

The client is scout's own websocket feed (scout.sources.feed), reading /domains-only frames of the test
fixture in a loop. Speed figures only: the test suite checks that pacing never runs ahead of schedule.
"""
from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from scout.counters import Counters
from scout.sources.feed import WebSocketFeed
from scout.sources.replay import ReplayServer

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "data" / "certstream-sample.jsonl"


def frames_per_s(rate: float | None, seconds: float) -> float:
    """Frames/s one client receives over `seconds`, after a short warm-up, from a looping replay server."""
    server = ReplayServer(FIXTURE, rate=rate, loop=True).start()
    counters, stop = Counters(), threading.Event()
    # A queue nobody reads, bounded: the feed drops (and counts) what does not fit, so the client costs
    # the same whatever the rate.
    feed = WebSocketFeed(server.url("/domains-only"), queue.Queue(maxsize=10), counters, stop)
    thread = threading.Thread(target=feed.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while counters.get("frames_received") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        n0, t0 = counters.get("frames_received"), time.monotonic()
        time.sleep(seconds)
        return (counters.get("frames_received") - n0) / (time.monotonic() - t0)
    finally:
        feed.stop()
        thread.join(5)
        server.stop()


def bench_replay(rate: float = 1000.0, seconds: float = 3.0) -> dict:
    paced = frames_per_s(rate, seconds)
    unpaced = frames_per_s(None, seconds)
    return {"replay_paced_frames_per_s": round(paced, 1), "replay_requested_frames_per_s": rate,
            "replay_pacing_ratio": round(paced / rate, 3), "replay_unpaced_frames_per_s": round(unpaced, 1),
            "replay_headroom_ratio": round(unpaced / rate, 2)}

"""A DNS batch that runs out of time is cancelled on the shared DNS loop, not left running: in the soak
(1,000 frames/s, defaults) the queries of timed-out batches piled up on the loop behind the retried ones,
every batch then timed out (338 retries, 12 batches done) and the dns worker stopped saving while its
memory grew. The real shared loop of scout.stages.dns; the batch's work is a coroutine that outlives it."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest


def test_a_timed_out_batch_is_cancelled_on_the_shared_loop():
    from scout.stages.dns import _loop

    started, cancelled, finished = threading.Event(), threading.Event(), threading.Event()

    async def slow(sem):
        async with sem:
            started.set()
            try:
                await asyncio.sleep(300)               # longer than any deadline (DEADLINE_SLACK 30 s)
                finished.set()
            except asyncio.CancelledError:
                cancelled.set()
                raise

    with pytest.raises(concurrent.futures.TimeoutError):
        _loop().run(slow, 1, 0.1)                   # one query, 0.1 s for its slot: past the deadline
    assert started.is_set()
    assert cancelled.wait(10) and not finished.is_set()

    async def quick(sem):
        async with sem:
            return "answered"
    assert _loop().run(quick, 1, 10) == "answered"       # the loop and its query cap are free again
    assert _loop().sem._value == _loop().max_in_flight

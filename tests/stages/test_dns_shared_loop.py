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
                await asyncio.sleep(30)
                finished.set()
            except asyncio.CancelledError:
                cancelled.set()
                raise

    with pytest.raises(concurrent.futures.TimeoutError):
        _loop().run(slow, 0.5)
    assert started.is_set()
    assert cancelled.wait(10) and not finished.is_set()

    async def quick(sem):
        async with sem:
            return "answered"
    assert _loop().run(quick, 10) == "answered"       # the loop and its query cap are free again
    assert _loop().sem._value == _loop().max_in_flight


def test_batches_past_the_budget_wait_their_turn_before_their_deadline_starts():
    """Twelve threads' batches, each half the admission budget and each needing 0.3 s: at most two run on
    the loop at once (without the budget all twelve would)."""
    from scout.stages.dns import _loop

    shared = _loop()
    running, peak, lock = [0], [0], threading.Lock()

    async def batch(sem):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.3)
        with lock:
            running[0] -= 1
        return "done"

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: shared.run(batch, 2.0, cost=shared.budget // 2), range(12)))
    assert results == ["done"] * 12
    assert peak[0] == 2 and shared.admitted == 0

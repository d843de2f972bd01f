"""Deadlines inside the stages (issue 16): thread-pool workers ignore Celery's time limits, so the DNS
batch and the save lock bound themselves, and a backlog at the default settings never turns into a
batch retried for ever."""
from __future__ import annotations

import fcntl
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from scout.config import Settings, parse_dns_servers
from scout.stages import dns as dns_stage
from scout.stages import files
from tests.servers.dns_scripted import ScriptedDns

THREADS = 50            # DNS_WORKERS' default: batches at once in one dns worker
BATCH = 50
SILENT_EVERY = 3        # one domain in three never gets an answer: each of its queries waits 3 x 2 s


def _settings(server: str) -> Settings:
    # Defaults for everything else: DNS_TIMEOUT=2s, DNS_RETRIES=2, the shared cap of 512 queries.
    return Settings(dns_server=server, dns_servers=tuple(parse_dns_servers("DNS_SERVER", server)))


@pytest.mark.slow
def test_dns_backlog_at_default_settings_finishes_every_batch():
    """50 threads x 50 domains queued at once, a third of them silent: ~4,400 queries of 6 s behind the
    512-query cap, about a minute of work. Each batch used to get a deadline of its own (~40 s) that ran
    while it waited its turn: the late batches failed, were retried and stalled the worker."""
    batches = [[f"d{b}-{i}.backlog.test" for i in range(BATCH)] for b in range(THREADS)]
    script = {}
    for batch in batches:
        for i, name in enumerate(batch):
            for t in dns_stage.TYPES:
                script[(name, t)] = None if i % SILENT_EVERY == 0 else ([["192.0.2.1"]] if t == "A" else [])
    with ScriptedDns({k: v for k, v in script.items() if v != []}) as server:
        s = _settings(server.server)
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(lambda b: dns_stage.resolve_batch(b, s), batches))
    answered = 0
    for batch, recs in zip(batches, results):     # every batch came back: none overran its deadline
        for i, rec in enumerate(recs):
            if i % SILENT_EVERY == 0:
                assert rec["transient"] and set(rec["dns_status"].values()) == {"TIMEOUT"}, batch[i]
            else:
                answered += rec["a_records"] == ["192.0.2.1"]
    # The Python test server may drop a datagram under this load; the resolver's retries cover nearly all.
    assert answered >= 0.98 * sum(1 for b in batches for i in range(len(b)) if i % SILENT_EVERY)
    assert dns_stage._loop().queued == 0


def test_dns_batch_deadline_cancels_the_batch_and_frees_the_cap(monkeypatch):
    """A batch over its deadline raises (the task retries it) and its queries leave the shared cap at
    once instead of running on behind the next batches."""
    monkeypatch.setattr(dns_stage, "DEADLINE_SLACK", 0.0)
    names = [f"s{i}.silent.test" for i in range(40)]
    with ScriptedDns({(n, t): None for n in names for t in dns_stage.TYPES}) as server:
        s = _settings(server.server)
        loop = dns_stage._loop()
        started = time.monotonic()
        # 240 queries, each allowed 4 x 2 s: a deadline of 8 s x (1 + 240/512) ~ 11.8 s; they need 6 s each,
        # so shrink the slot the deadline counts to make it expire first.
        with pytest.raises(dns_stage.DnsDeadline):
            loop.run(lambda sem: _resolve(names, s, sem), len(names) * len(dns_stage.TYPES), 1.0)
        assert time.monotonic() - started < 6.0          # raised at the deadline, not when the queries end
        assert _wait(lambda: loop.queued == 0 and loop.sem._value == loop.max_in_flight, 10)


async def _resolve(names, s, sem):
    import asyncio
    return await asyncio.gather(*(dns_stage._resolve_one(n, list(s.dns_servers), s.dns_timeout, s.dns_retries,
                                                         sem) for n in names))


def _wait(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_save_lock_wait_is_bounded(tmp_path):
    """A document directory held by a hung writer: the save gives up after its lock timeout (the task
    retries, then the failed store) instead of holding a worker thread for ever."""
    d = tmp_path / "example.test"
    d.mkdir()
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)        # another process' writer, stuck
    try:
        err: list = []

        def save():
            try:
                with files.locked_dir(d, timeout=1.0):
                    pass
            except files.LockTimeout as exc:
                err.append(exc)

        t = threading.Thread(target=save)
        t.start()
        t.join(30)
        assert not t.is_alive() and err and "locked" in str(err[0])
    finally:
        os.close(fd)
    with files.locked_dir(d, timeout=1.0):   # released: taken at once
        pass
    assert files.LOCK_TIMEOUT == 60.0

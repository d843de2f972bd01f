"""Issue 16, bounded: the failed-task store is capped (FAILED_MAX_ENTRIES, FAILED_MAX_BYTES) with a TTL
(FAILED_TTL), the oldest dropped first and counted; `scout failed list` reads in pages; `scout failed
purge` without --older-than asks for --all.

Real parts: this test run's Redis (db 14) and the `scout` CLI in a subprocess; the MemoryStore (embedded
mode) is held to the same rules.
"""
from __future__ import annotations

import time

import pytest

from tests.conftest import emptied_redis, redis_db, run_scout, scout_env

URL = redis_db(14)


@pytest.fixture
def redis14():
    yield from emptied_redis(URL)


@pytest.fixture(params=["redis", "memory"])
def store(request, redis14):
    from scout.store import MemoryStore, RedisStore

    return RedisStore(URL) if request.param == "redis" else MemoryStore()


def fail(store, n: int, env: dict, when=None, size: int = 10) -> list[str]:
    """Record `n` failed dns tasks the way a worker does; -> their ids, oldest first."""
    from scout.config import load_settings, set_settings
    from scout.stages.failures import record_failure

    set_settings(load_settings(env, None))
    ids = []
    try:
        for i in range(n):
            items = [{"d": f"f{i}-{k}.example", "r": f"f{i}-{k}.example", "pad": "x" * size} for k in range(3)]
            ids.append(record_failure(store, task="scout.dns", stage="dns", args=[items], exc="Boom: test",
                                      attempts=6, queue="dns"))
            if when is not None:   # back-date it (as if recorded `when` seconds ago)
                e = store.get_failed(ids[-1])
                e["time"] = time.time() - when
                store.put_failed(e["id"], e)
            time.sleep(0.002)
    finally:
        set_settings(load_settings({}, None))
    return ids


def test_capped_by_count_oldest_dropped_and_counted(store):
    ids = fail(store, 8, {"FAILED_MAX_ENTRIES": "5"})
    assert [e["id"] for e in store.list_failed()] == ids[3:]
    assert store.counters()["failed_dropped"] == 3
    assert store.count_failed()[0] == 5


def test_capped_by_bytes(store):
    ids = fail(store, 4, {"FAILED_MAX_BYTES": "1000000"}, size=2000)
    one = store.count_failed()[1] / 4
    assert 6000 < one < 9000
    more = fail(store, 6, {"FAILED_MAX_BYTES": str(int(one * 5.5))}, size=2000)
    kept = [e["id"] for e in store.list_failed()]
    assert kept == (ids + more)[-5:]
    n, size = store.count_failed()
    assert n == 5 and size <= one * 5.5
    assert store.counters()["failed_dropped"] == 5
    assert store.delete_failed(kept[0]) and store.count_failed() == (4, pytest.approx(size - one, rel=0.05))


def test_entries_expire_after_failed_ttl(store):
    from scout.store import RedisStore

    old = fail(store, 3, {}, when=8 * 86400)          # older than the default FAILED_TTL (7 days)
    new = fail(store, 1, {})
    assert [e["id"] for e in store.list_failed()] == new
    assert store.counters()["failed_expired"] == 3 and "failed_dropped" not in store.counters()
    if isinstance(store, RedisStore):   # the entry itself expires too, with nothing recorded after it
        ttl_ms = store.r.pttl("scout:failed:item:" + new[0])
        assert 6.9 * 86400e3 < ttl_ms <= 7 * 86400e3
    assert old


def test_cli_lists_in_pages_and_purge_asks_for_all(redis14):
    import redis

    from scout.store import RedisStore

    store = RedisStore(URL)
    fail(store, 1200, {}, size=1)
    env = scout_env(REDIS_URL=URL)
    r = redis.Redis.from_url(URL)
    r.config_resetstat()
    out = run_scout(["failed", "list"], env)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[-1] == "1200 failed task(s)" and len(lines) == 1202
    mget = r.info("commandstats").get("cmdstat_mget", {})
    assert mget.get("calls", 0) >= 3                       # 500 at a time, not one read of all 1,200
    out = run_scout(["failed", "list", "--limit", "7"], env)
    assert out.stdout.splitlines()[-1] == "7 failed task(s) of 1200 (%d bytes)" % store.count_failed()[1]

    out = run_scout(["failed", "purge"], env)
    assert out.returncode == 2 and "--all" in out.stderr and store.count_failed()[0] == 1200
    out = run_scout(["failed", "purge", "--older-than", "1h"], env)
    assert out.returncode == 0 and "purged 0 failed task(s)" in out.stdout
    out = run_scout(["failed", "purge", "--all"], env)
    assert out.returncode == 0 and "purged 1200 failed task(s)" in out.stdout
    assert store.count_failed() == (0, 0) and not r.keys("scout:failed:item:*")

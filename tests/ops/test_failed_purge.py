"""`scout failed purge --older-than AGE` removes the entries older than AGE and keeps the younger ones
(a purge tested only with 0s would pass if the age were ignored)."""
from __future__ import annotations

import pytest

from scout.stages.failures import record_failure
from scout.store import RedisStore
from tests.conftest import emptied_redis, redis_db, run_scout, scout_env


@pytest.fixture
def store():
    for url in emptied_redis(redis_db(14)):
        yield RedisStore(url)


def failure(store, name: str, age: float) -> str:
    entry_id = record_failure(store, task="scout.save", stage="save", args=[[{"d": name, "r": name}]],
                              exc=OSError(f"disk full writing {name}"), attempts=2, queue="save")
    entry = store.get_failed(entry_id)
    entry["time"] -= age
    store.put_failed(entry_id, entry)
    return entry_id


def test_purge_removes_only_entries_older_than_the_age(store):
    env = scout_env(REDIS_URL=redis_db(14))
    # Ages under FAILED_TTL (7d): older entries leave the store by themselves at the next write.
    old, week_old, fresh = failure(store, "old.example", 2 * 3600), failure(store, "week.example", 3 * 86400), \
        failure(store, "fresh.example", 0)

    r = run_scout(["failed", "purge", "--older-than", "2d"], env, timeout=60)
    assert r.returncode == 0 and "purged 1 failed task(s)" in r.stdout, r.stdout + r.stderr
    assert {e["id"] for e in store.list_failed()} == {old, fresh}

    r = run_scout(["failed", "purge", "--older-than", "1h"], env, timeout=60)
    assert r.returncode == 0 and "purged 1 failed task(s)" in r.stdout, r.stdout + r.stderr
    assert {e["id"] for e in store.list_failed()} == {fresh}
    assert week_old not in r.stdout

    r = run_scout(["failed", "purge", "--older-than", "0s"], env, timeout=60)
    assert "purged 1 failed task(s)" in r.stdout and store.list_failed() == []


def test_purge_refuses_a_bad_age(store):
    failure(store, "kept.example", 3600)
    r = run_scout(["failed", "purge", "--older-than", "soon"], scout_env(REDIS_URL=redis_db(14)), timeout=60)
    assert r.returncode == 2 and "--older-than" in r.stderr, r.stdout + r.stderr
    assert len(store.list_failed()) == 1

"""Issue 16: the WHOIS backlog (WHOIS_MAX_BACKLOG) is what the lookup queues really hold, not the running
difference `whois_dispatched - whois_landed`, which a purge or a lost message left high for good (until
every new root was `skipped_backlog`).

Real parts: this test run's Redis (db 14) as broker and store; the chain's WHOIS step as the `scout.whois`
task runs it (no worker consumes the lookups, so they stay queued).
"""
from __future__ import annotations

import pytest

from tests.conftest import emptied_redis, redis_db
from tests.support.brokers import configured_app

URL = redis_db(14)


@pytest.fixture
def redis14():
    yield from emptied_redis(URL)


def batch(tag: str, n: int) -> list[dict]:
    return [{"d": f"www.{tag}{i}.example", "r": f"{tag}{i}.example", "seen": 1.0, "dns": {}} for i in range(n)]


def statuses(items) -> dict[str, str]:
    return {it["r"]: it["dw"]["parsed"]["status"] for it in items}


def test_whois_backlog_follows_the_queue_after_a_purge(redis14):
    from scout.queues import queue_lengths
    from scout.stages import tasks
    from scout.store import get_store

    with configured_app({"BROKER_URL": URL, "WHOIS_MAX_BACKLOG": "3", "LEDGER_TIMEOUT": "0s"}) as (app, s):
        tasks._depths = None
        first = tasks._whois_step(batch("a", 5))
        assert sorted(statuses(first).values()) == ["pending"] * 3 + ["skipped_backlog"] * 2
        assert queue_lengths(app, ["whois.default"])["whois.default"] == 3

        second = tasks._whois_step(batch("b", 2))                   # the bound holds across batches
        assert set(statuses(second).values()) == {"skipped_backlog"}

        # The lookups are lost (a purge, a broker that lost them): the counters say 3 are still out ...
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("whois.default")
        c = get_store().counters()
        assert c["whois_dispatched"] - c.get("whois_landed", 0) == 3
        # ... but the queue is empty, so new roots are looked up again.
        third = tasks._whois_step(batch("c", 4))
        assert sorted(statuses(third).values()) == ["pending"] * 3 + ["skipped_backlog"]
        assert queue_lengths(app, ["whois.default"])["whois.default"] == 3
        tasks._depths = None


def test_a_lookup_landing_between_cache_read_and_lock_is_used_not_dispatched_again(redis14):
    """The race behind a duplicate dispatch: a batch reads the cache (miss), the lookup in flight lands
    (answer cached, lock released), then the batch takes the free lock. It must use the answer."""
    from scout.config import load_settings
    from scout.stages.whois import join_domain_whois
    from scout.store import RedisStore

    store = RedisStore(URL)
    s = load_settings({}, None)
    answer = {"raw": "Domain Name: RACE.EXAMPLE", "parsed": {"status": "ok"}}
    sent = []

    class LandsMidway(RedisStore):
        def get_many_json(self, keys):
            out = super().get_many_json(keys)           # the miss ...
            store.set_json("dw:race.example", answer, 3600)   # ... then the lookup lands
            return out

    items = join_domain_whois([{"d": "www.race.example", "r": "race.example"}], s,
                              LandsMidway(URL), lambda root, urgency: sent.append(root))
    assert sent == [] and items[0]["dw"] == answer
    assert store.counters().get("whois_domain_cache_hit") == 1 and "whois_dispatched" not in store.counters()
    assert store.acquire("dw:race.example", 10)        # the lock was given back

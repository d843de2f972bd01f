"""The live overview with a fleet's parts: queue depths from the broker, counters and the WHOIS backlog
from Redis, domains saved per second between two loads, and a broker that does not answer."""
from __future__ import annotations

import time

import pytest

from tests.conftest import emptied_redis, free_port, redis_db, wait_for
from tests.support.web import WebServer, get, get_json


@pytest.fixture
def fleet_redis():
    yield from emptied_redis(redis_db(14))


def test_queue_depths_backlog_and_rate(filled_store, fleet_redis, tmp_path):
    from kombu import Connection

    from scout.store import RedisStore

    url, out, _ = filled_store
    shared = RedisStore(fleet_redis)
    shared.incr({"domains_saved": 1000, "whois_dispatched": 7, "whois_landed": 3})
    with Connection(fleet_redis) as conn:            # two batches waiting for a dns worker that is not there
        q = conn.SimpleQueue("dns")
        q.put({"batch": 1})
        q.put({"batch": 2})
        q.close()
    server = WebServer(tmp_path, url, OUTPUT_DIR=out, BROKER_URL=fleet_redis, REDIS_URL=fleet_redis).start()
    try:
        status, first = get_json(server.base + "/api/overview")
        assert status == 200 and "error" not in first["pipeline"], first["pipeline"]
        p = first["pipeline"]
        assert p["queues"]["dns"] == 2 and p["queues"]["save"] == 0 and "whois.default" in p["queues"]
        assert p["whois_backlog"] == 4
        time.sleep(1.5)
        shared.incr({"domains_saved": 300})
        second = get_json(server.base + "/api/overview")[1]["pipeline"]
        assert 0 < second["saved_per_second"] <= 300 / 1.5
        status, _, html = get(server.base + "/")
        assert status == 200 and b'id="queues"' in html and b'id="whois-backlog">4<' in html
    finally:
        server.stop()


def test_a_broker_that_does_not_answer_is_shown_not_fatal(filled_store, tmp_path):
    url, out, docs = filled_store
    dead = f"redis://127.0.0.1:{free_port()}/0"
    server = WebServer(tmp_path, url, OUTPUT_DIR=out, BROKER_URL=dead, REDIS_URL=dead).start()
    try:
        status, body = wait_for(lambda: get_json(server.base + "/api/overview", timeout=120), timeout=180,
                                message="the overview")
        assert status == 200 and body["pipeline"]["error"]
        assert body["store"]["domains"] == len(docs)          # the store's figures still come
        status, _, html = get(server.base + "/", timeout=120)
        assert status == 200 and b"Pipeline figures unavailable" in html
    finally:
        server.stop()

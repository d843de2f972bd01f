"""Issue 16, bounded: the WHOIS caches are stored zlib-compressed (parsed result and raw answer) and, with
CACHE_REDIS_URL, in a Redis of their own (with the seen-domain keys), apart from the broker and the shared
store. Real Redis (this run's
server, db 14 as the store and db 15 as the cache).
"""
from __future__ import annotations

import ipaddress
import json

import pytest

from tests.conftest import emptied_redis, redis_db

STORE, CACHE = redis_db(14), redis_db(15)
RAW = "".join(f"Domain Name: EXAMPLE{i}.COM\r\nRegistrar: Example Registrar, Inc.\r\nStatus: ok\r\n" for i in range(60))
RESULT = {"raw": RAW, "parsed": {"status": "ok", "registrar": "Example Registrar, Inc.", "server": "rdap.x"}}


@pytest.fixture
def dbs():
    gen_store, gen_cache = emptied_redis(STORE), emptied_redis(CACHE)
    next(gen_store), next(gen_cache)
    yield
    for g in (gen_store, gen_cache):
        next(g, None)


def test_domain_cache_is_compressed_and_read_back(dbs):
    import redis

    from scout.config import load_settings
    from scout.stages.whois import lookup_domain_cached
    from scout.store import RedisStore

    store = RedisStore(STORE)
    s = load_settings({}, None)
    calls = []

    def lookup(root, settings, source_ip):
        calls.append(root)
        return RESULT

    assert lookup_domain_cached("example.com", s, store, None, lookup) == (RESULT, True)
    stored = redis.Redis.from_url(STORE).get("scout:dw:example.com")
    plain = json.dumps(RESULT, separators=(",", ":")).encode()
    assert stored[:1] == b"x" and len(stored) * 4 < len(plain)
    assert lookup_domain_cached("example.com", s, store, None, lookup) == (RESULT, False) and calls == ["example.com"]
    assert store.get_many_json(["dw:example.com", "dw:missing.com"]) == [RESULT, None]
    # Entries written before compression (plain JSON) still read.
    redis.Redis.from_url(STORE).set("scout:dw:old.com", plain)
    assert store.get_json("dw:old.com") == RESULT


def test_cache_redis_url_keeps_caches_apart(dbs):
    import redis

    from scout.stages.ipcache import cache_ip_result, cached_ip_result
    from scout.store import RedisStore

    store = RedisStore(STORE, CACHE)
    store.set_json("dw:example.com", RESULT, 3600)
    cache_ip_result(store, [ipaddress.ip_network("192.0.2.0/24")], {"raw": "NetRange", "info": {"status": "ok"}}, 3600)
    assert store.add_if_new(["a.example.com"], 3600) == [True]
    store.incr({"x": 1})
    in_store = sorted(k.decode() for k in redis.Redis.from_url(STORE).keys("*"))
    in_cache = sorted(k.decode() for k in redis.Redis.from_url(CACHE).keys("*"))
    assert in_cache == ["scout:dw:example.com", "scout:ipnet:192.0.2.0/24", "scout:ipnet:lengths",
                        "scout:seen:a.example.com"]
    assert in_store == ["scout:counters"]
    store.forget(["a.example.com"])
    assert store.add_if_new(["a.example.com"], 3600) == [True]
    assert store.get_json("dw:example.com") == RESULT
    assert cached_ip_result(store, "192.0.2.77")["info"]["status"] == "ok"
    assert redis.Redis.from_url(CACHE).pttl("scout:dw:example.com") > 3000 * 1000

"""Shared state of the pipeline: seen-domain de-duplication, WHOIS caches, in-flight locks, pending
documents, counters and the failed-task store.

`RedisStore` is what a fleet shares (atomic SET NX EX, pipelines, one round trip per batch);
`MemoryStore` serves the embedded mode (one process, no Redis), with the same methods and bounded sizes.
Keys all start with `scout:` so a shared Redis stays readable.
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict

try:
    import orjson

    def _dumps(value) -> bytes:
        return orjson.dumps(value)
except ImportError:  # pragma: no cover
    def _dumps(value) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

PREFIX = "scout:"
COUNTERS = PREFIX + "counters"
FAILED_INDEX = PREFIX + "failed:index"      # sorted set id -> time
FAILED_ITEM = PREFIX + "failed:item:"       # + id -> JSON
LEDGER = PREFIX + "ledger"                  # sorted set "<batch id>.<domains>" -> time it is overdue
LEDGER_ITEMS = PREFIX + "ledger:items"      # hash batch -> its items as published (JSON)


class Store:
    """Interface (documented by the two implementations below)."""

    def add_if_new(self, keys: list[str], ttl: float) -> list[bool]: ...
    def forget(self, keys: list[str]) -> None: ...
    def get_json(self, key: str): ...
    def get_many_json(self, keys: list[str]) -> list: ...
    def set_json(self, key: str, value, ttl: float) -> None: ...
    def acquire(self, key: str, ttl: float) -> bool: ...
    def release(self, key: str) -> None: ...
    def add_members(self, key: str, members: list[str], ttl: float) -> None: ...
    def pop_members(self, key: str) -> list[str]: ...
    def get_members(self, key: str) -> list[str]: ...
    def incr(self, counts: dict[str, int]) -> None: ...
    def counters(self) -> dict[str, int]: ...
    def put_failed(self, entry_id: str, entry: dict) -> None: ...
    def list_failed(self) -> list[dict]: ...
    def get_failed(self, entry_id: str) -> dict | None: ...
    def delete_failed(self, entry_id: str) -> bool: ...
    def track(self, batch: str, items: list[dict], due: float) -> None: ...
    def settle(self, batches: list[str]) -> None: ...
    def overdue(self, now: float, limit: int) -> list[tuple[str, list[dict]]]: ...
    def in_flight(self, now: float) -> tuple[int, int]: ...


class RedisStore(Store):
    def __init__(self, url: str):
        import redis

        self.url = url
        self.r = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                      health_check_interval=30, retry_on_timeout=True)

    def ping(self) -> bool:
        return bool(self.r.ping())

    def add_if_new(self, keys, ttl):
        if not keys:
            return []
        ms = max(1, int(ttl * 1000))
        pipe = self.r.pipeline(transaction=False)
        for k in keys:
            pipe.set(PREFIX + "seen:" + k, b"1", nx=True, px=ms)
        return [bool(x) for x in pipe.execute()]

    def forget(self, keys):
        if keys:
            self.r.delete(*[PREFIX + "seen:" + k for k in keys])

    def get_json(self, key):
        raw = self.r.get(PREFIX + key)
        return json.loads(raw) if raw else None

    def get_many_json(self, keys):
        if not keys:
            return []
        return [json.loads(v) if v else None for v in self.r.mget([PREFIX + k for k in keys])]

    def set_json(self, key, value, ttl):
        self.r.set(PREFIX + key, json.dumps(value, separators=(",", ":")), px=max(1, int(ttl * 1000)))

    def acquire(self, key, ttl):
        return bool(self.r.set(PREFIX + "lock:" + key, b"1", nx=True, px=max(1, int(ttl * 1000))))

    def release(self, key):
        self.r.delete(PREFIX + "lock:" + key)

    def add_members(self, key, members, ttl):
        if not members:
            return
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd(PREFIX + key, *members)
        pipe.pexpire(PREFIX + key, max(1, int(ttl * 1000)))
        pipe.execute()

    def pop_members(self, key):
        pipe = self.r.pipeline(transaction=True)
        pipe.smembers(PREFIX + key)
        pipe.delete(PREFIX + key)
        members, _ = pipe.execute()
        return sorted(m.decode() for m in members)

    def get_members(self, key):
        return sorted(m.decode() for m in self.r.smembers(PREFIX + key))

    def incr(self, counts):
        counts = {k: v for k, v in counts.items() if v}
        if not counts:
            return
        pipe = self.r.pipeline(transaction=False)
        for k, v in counts.items():
            pipe.hincrby(COUNTERS, k, v)
        pipe.execute()

    def counters(self):
        return {k.decode(): int(v) for k, v in self.r.hgetall(COUNTERS).items()}

    def put_failed(self, entry_id, entry):
        pipe = self.r.pipeline(transaction=True)
        pipe.set(FAILED_ITEM + entry_id, json.dumps(entry))
        pipe.zadd(FAILED_INDEX, {entry_id: entry.get("time", time.time())})
        pipe.execute()

    def list_failed(self):
        ids = [i.decode() for i in self.r.zrange(FAILED_INDEX, 0, -1)]
        if not ids:
            return []
        raws = self.r.mget([FAILED_ITEM + i for i in ids])
        return [json.loads(r) for r in raws if r]

    def get_failed(self, entry_id):
        raw = self.r.get(FAILED_ITEM + entry_id)
        return json.loads(raw) if raw else None

    def delete_failed(self, entry_id):
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(FAILED_ITEM + entry_id)
        pipe.zrem(FAILED_INDEX, entry_id)
        deleted, _ = pipe.execute()
        return bool(deleted)

    # The in-flight ledger (scout.producer.ledger): one round trip per batch each way.
    def track(self, batch, items, due):
        pipe = self.r.pipeline(transaction=True)   # both or neither: an entry always has its items
        pipe.hset(LEDGER_ITEMS, batch, _dumps(items))
        pipe.zadd(LEDGER, {batch: due})
        pipe.execute()

    def settle(self, batches):
        if not batches:
            return
        pipe = self.r.pipeline(transaction=True)
        pipe.zrem(LEDGER, *batches)
        pipe.hdel(LEDGER_ITEMS, *batches)
        pipe.execute()

    def overdue(self, now, limit):
        batches = [b.decode() for b in self.r.zrangebyscore(LEDGER, "-inf", now, start=0, num=limit)]
        if not batches:
            return []
        out = []
        for batch, raw in zip(batches, self.r.hmget(LEDGER_ITEMS, batches)):
            try:
                items = json.loads(raw) if raw is not None else None
            except ValueError:
                items = None
            if isinstance(items, list):
                out.append((batch, items))
            else:  # settled between the two reads, or damaged: nothing to send
                self.settle([batch])
        return out

    def in_flight(self, now):
        """(domains in flight, of which overdue): batch ids end with their number of domains."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zrange(LEDGER, 0, -1, withscores=True)
        (entries,) = pipe.execute()
        total = late = 0
        for member, due in entries:
            n = int(member.rpartition(b".")[2] or 0)
            total += n
            late += n if due <= now else 0
        return total, late


class _TTLDict:
    """A size-bounded mapping with per-key expiry; the oldest entries go first when full."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self.d: OrderedDict[str, tuple[float, object]] = OrderedDict()

    def get(self, key, now):
        item = self.d.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self.d[key]
            return None
        return item[1]

    def set(self, key, value, expires):
        self.d[key] = (expires, value)
        self.d.move_to_end(key)
        while len(self.d) > self.max_items:
            self.d.popitem(last=False)

    def pop(self, key):
        item = self.d.pop(key, None)
        return None if item is None else item[1]


class MemoryStore(Store):
    def __init__(self, max_seen: int = 1_000_000, max_cache: int = 200_000):
        self.lock = threading.Lock()
        self.seen = _TTLDict(max_seen)
        self.cache = _TTLDict(max_cache)
        self.locks = _TTLDict(max_cache)
        self.sets: dict[str, set[str]] = {}
        self.counts: dict[str, int] = {}
        self.failed: dict[str, dict] = {}

    def ping(self):
        return True

    def add_if_new(self, keys, ttl):
        now = time.monotonic()
        out = []
        with self.lock:
            for k in keys:
                if self.seen.get(k, now) is None:
                    self.seen.set(k, True, now + ttl)
                    out.append(True)
                else:
                    out.append(False)
        return out

    def forget(self, keys):
        with self.lock:
            for k in keys:
                self.seen.pop(k)

    def get_json(self, key):
        with self.lock:
            v = self.cache.get(key, time.monotonic())
        return json.loads(v) if v is not None else None

    def get_many_json(self, keys):
        return [self.get_json(k) for k in keys]

    def set_json(self, key, value, ttl):
        with self.lock:
            self.cache.set(key, json.dumps(value), time.monotonic() + ttl)

    def acquire(self, key, ttl):
        now = time.monotonic()
        with self.lock:
            if self.locks.get(key, now) is not None:
                return False
            self.locks.set(key, True, now + ttl)
            return True

    def release(self, key):
        with self.lock:
            self.locks.pop(key)

    def add_members(self, key, members, ttl):
        with self.lock:
            self.sets.setdefault(key, set()).update(members)

    def pop_members(self, key):
        with self.lock:
            return sorted(self.sets.pop(key, set()))

    def get_members(self, key):
        with self.lock:
            return sorted(self.sets.get(key, set()))

    def incr(self, counts):
        with self.lock:
            for k, v in counts.items():
                if v:
                    self.counts[k] = self.counts.get(k, 0) + v

    def counters(self):
        with self.lock:
            return dict(self.counts)

    def put_failed(self, entry_id, entry):
        with self.lock:
            self.failed[entry_id] = json.loads(json.dumps(entry))

    def list_failed(self):
        with self.lock:
            return sorted(self.failed.values(), key=lambda e: e.get("time", 0))

    def get_failed(self, entry_id):
        with self.lock:
            return self.failed.get(entry_id)

    def delete_failed(self, entry_id):
        with self.lock:
            return self.failed.pop(entry_id, None) is not None

    # The embedded mode's broker lives in this process and loses nothing on its own: no ledger.
    def track(self, batch, items, due):
        pass

    def settle(self, batches):
        pass

    def overdue(self, now, limit):
        return []

    def in_flight(self, now):
        return 0, 0


class LocalSeenCache:
    """A bounded memory of recently seen names in front of a shared store's de-duplication.

    CT repeats names within seconds (precertificate then certificate, the same certificate in several
    logs): answering those locally saves Redis round trips. The shared store stays the authority, and
    `forget` clears both, so a name a sink had to drop comes back when it is seen again. Every other
    method passes through to the store."""

    # About a minute of the live stream's names: CT's repeats mostly come within it (what it misses costs
    # one pipelined Redis check, not a duplicate). Full before 100k names, so the producer's memory is flat.
    def __init__(self, store: Store, size: int = 30_000):
        self.store = store
        self.recent = _TTLDict(size)

    def add_if_new(self, keys, ttl):
        now = time.monotonic()
        answers: list = [False if self.recent.get(k, now) is not None else None for k in keys]
        ask = [i for i, a in enumerate(answers) if a is None]
        if ask:
            for i, fresh in zip(ask, self.store.add_if_new([keys[i] for i in ask], ttl)):
                answers[i] = fresh
        for k in keys:
            self.recent.set(k, True, now + ttl)
        return answers

    def forget(self, keys):
        for k in keys:
            self.recent.pop(k)
        self.store.forget(keys)

    def __getattr__(self, name):
        return getattr(self.store, name)


def with_local_seen(store):
    """The store the producer de-duplicates with: a LocalSeenCache in front of a shared (Redis) store."""
    return store if isinstance(store, (MemoryStore, LocalSeenCache)) else LocalSeenCache(store)


_store: Store | None = None
_store_lock = threading.Lock()


def get_store() -> Store:
    """The process's store: Redis when REDIS_URL (or a Redis BROKER_URL) is set, else in memory."""
    global _store
    with _store_lock:
        if _store is None:
            from scout.config import get_settings

            url = get_settings().redis_url
            _store = RedisStore(url) if url else MemoryStore()
        return _store


def set_store(store: Store | None) -> None:
    global _store
    with _store_lock:
        _store = store

"""The store a fleet shares: Redis (atomic SET NX PX, pipelines, one round trip per batch)."""
from __future__ import annotations

import json
import time

from scout.store.base import (COUNTERS, FAILED_INDEX, FAILED_ITEM, HOLDERS, LEASE, LEDGER, LEDGER_ITEMS, PREFIX,
                              Store)

try:
    import orjson

    def _dumps(value) -> bytes:
        return orjson.dumps(value)
except ImportError:  # pragma: no cover
    def _dumps(value) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


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

    # The in-flight ledger (scout.stages.chain, scout.producer.ledger): one round trip per batch each way.
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

    # Worker leases: a worker renews its key every third of WORKER_LEASE; the batches its tasks run are
    # held under its id. A hold whose lease key expired belongs to a dead worker (scout.producer.ledger).
    def renew_lease(self, worker, info, ttl):
        self.r.set(LEASE + worker, json.dumps(info, separators=(",", ":")), px=max(1, int(ttl * 1000)))

    def drop_lease(self, worker):
        self.r.delete(LEASE + worker)

    def leases(self):
        keys = list(self.r.scan_iter(match=LEASE + "*", count=500))
        out = {}
        for key, raw in zip(keys, self.r.mget(keys) if keys else []):
            try:
                out[key.decode()[len(LEASE):]] = json.loads(raw) if raw else {}
            except ValueError:
                continue
        return out

    def hold(self, batches, worker):
        if batches:
            self.r.hset(HOLDERS, mapping={b: worker for b in batches})

    _UNHOLD = """for i = 2, #ARGV do if redis.call('hget', KEYS[1], ARGV[i]) == ARGV[1] then
                   redis.call('hdel', KEYS[1], ARGV[i]) end end"""

    def unhold(self, batches, worker):
        if batches:   # only this worker's holds: the batch may have moved on to another worker already
            self.r.eval(self._UNHOLD, 1, HOLDERS, worker, *batches)

    def dead_holds(self):
        holds = {b.decode(): w.decode() for b, w in self.r.hgetall(HOLDERS).items()}
        workers = sorted(set(holds.values()))
        if not workers:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for w in workers:
            pipe.exists(LEASE + w)
        alive = {w for w, n in zip(workers, pipe.execute()) if n}
        return {b: w for b, w in holds.items() if w not in alive}

    _TAKE = """if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('hdel', KEYS[1], ARGV[1])
                 return 1 end return 0"""

    def take_hold(self, batch, worker):
        """Remove the hold of `batch` by (dead) `worker`; True for the one process that removed it."""
        return bool(self.r.eval(self._TAKE, 1, HOLDERS, batch, worker))

    def ledger_items(self, batch):
        """The items of a batch still in the ledger, or None (settled, or damaged)."""
        raw = self.r.hget(LEDGER_ITEMS, batch)
        try:
            items = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return items if isinstance(items, list) else None

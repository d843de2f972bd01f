"""The store a fleet shares: Redis (atomic SET NX PX, pipelines, one round trip per batch).

The WHOIS caches (`dw:<root>`, `ipnet:<network>` and their prefix-length set) are stored zlib-compressed
(the parsed result and the raw answer both: 0.43 of the plain JSON on real answers, bench/sizing.py).
With CACHE_REDIS_URL, they and the seen-domain keys live in a Redis of their own that may evict
(allkeys-lru): losing one costs a repeated lookup or a duplicate document update, never data. Queues,
the ledger, locks, pending sets, counters and the failed store stay in REDIS_URL, which must not evict.
"""
from __future__ import annotations

import json
import time
import zlib

from scout.counters import shared_counted
from scout.store.base import (COUNTERS, FAILED_BYTES, FAILED_INDEX, FAILED_ITEM, FAILED_SIZES, HOLDERS, LEASE,
                              LEDGER, LEDGER_ITEMS, PREFIX, Store)

try:
    import orjson

    def _dumps(value) -> bytes:
        return orjson.dumps(value)
except ImportError:  # pragma: no cover
    def _dumps(value) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


# The failed store in one atomic step: the entry, its size, the running byte total, then the oldest entries
# dropped while over a cap (expired ones first). A Lua script so that the index, the sizes and the total
# never disagree, whichever of several workers records a failure at the same time.
_DROP = """
local function drop(victim)
  local sz = redis.call('HGET', KEYS[2], victim)
  if sz then redis.call('DECRBY', KEYS[3], sz) end
  redis.call('HDEL', KEYS[2], victim)
  redis.call('ZREM', KEYS[1], victim)
  redis.call('DEL', ARGV[1] .. victim)
end
"""
_PUT_FAILED = _DROP + """
local id, body = ARGV[2], ARGV[3]
local when, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local maxn, maxb, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
drop(id)
if ttl > 0 then redis.call('SET', ARGV[1] .. id, body, 'PX', ttl) else redis.call('SET', ARGV[1] .. id, body) end
redis.call('ZADD', KEYS[1], when, id)
redis.call('HSET', KEYS[2], id, string.len(body))
redis.call('INCRBY', KEYS[3], string.len(body))
local expired, dropped = 0, 0
if ttl > 0 then
  for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - ttl / 1000), 'LIMIT', 0, 1000)) do
    if v ~= id then drop(v); expired = expired + 1 end
  end
end
while (maxn > 0 and redis.call('ZCARD', KEYS[1]) > maxn)
      or (maxb > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') > maxb) do
  local v = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if (not v) or (v == id and redis.call('ZCARD', KEYS[1]) == 1) then break end
  drop(v)
  dropped = dropped + 1
end
if dropped > 0 then redis.call('HINCRBY', KEYS[4], 'failed_dropped', dropped) end
if expired > 0 then redis.call('HINCRBY', KEYS[4], 'failed_expired', expired) end
return {dropped, expired}
"""
_DELETE_FAILED = _DROP + """
local existed = redis.call('EXISTS', ARGV[1] .. ARGV[2]) + (redis.call('ZSCORE', KEYS[1], ARGV[2]) and 1 or 0)
drop(ARGV[2])
return existed
"""


CACHE_PREFIXES = ("dw:", "ipnet:")     # the WHOIS caches: compressed, and in the cache Redis when there is one
COMPRESS_LEVEL = 6                     # zlib's default: level 9 saves ~2 % more for twice the CPU


def _pack(key: str, value) -> bytes:
    body = json.dumps(value, separators=(",", ":")).encode()
    # A compressed value starts with zlib's header byte "x", which no JSON text starts with.
    return zlib.compress(body, COMPRESS_LEVEL) if key.startswith(CACHE_PREFIXES) else body


def _unpack(raw):
    if not raw:
        return None
    return json.loads(zlib.decompress(raw) if raw[:1] == b"x" else raw)


class RedisStore(Store):
    def __init__(self, url: str, cache_url: str = ""):
        import redis

        self.url = url
        opts = dict(socket_timeout=10, socket_connect_timeout=5, health_check_interval=30, retry_on_timeout=True)
        self.r = redis.Redis.from_url(url, **opts)
        self.cache_r = redis.Redis.from_url(cache_url, **opts) if cache_url and cache_url != url else self.r

    def _for(self, key: str):
        return self.cache_r if key.startswith(CACHE_PREFIXES) else self.r

    def ping(self) -> bool:
        return bool(self.r.ping())

    def add_if_new(self, keys, ttl):
        if not keys:
            return []
        ms = max(1, int(ttl * 1000))
        pipe = self.cache_r.pipeline(transaction=False)
        for k in keys:
            pipe.set(PREFIX + "seen:" + k, b"1", nx=True, px=ms)
        return [bool(x) for x in pipe.execute()]

    def forget(self, keys):
        if keys:
            self.cache_r.delete(*[PREFIX + "seen:" + k for k in keys])

    def get_json(self, key):
        return _unpack(self._for(key).get(PREFIX + key))

    def get_many_json(self, keys):
        if not keys:
            return []
        if self.cache_r is self.r or not any(k.startswith(CACHE_PREFIXES) for k in keys):
            return [_unpack(v) for v in self._for(keys[0]).mget([PREFIX + k for k in keys])]
        return [self.get_json(k) for k in keys]   # mixed keys over two servers (no caller does this)

    def set_json(self, key, value, ttl):
        self._for(key).set(PREFIX + key, _pack(key, value), px=max(1, int(ttl * 1000)))

    def acquire(self, key, ttl):
        return bool(self.r.set(PREFIX + "lock:" + key, b"1", nx=True, px=max(1, int(ttl * 1000))))

    def release(self, key):
        self.r.delete(PREFIX + "lock:" + key)

    def add_members(self, key, members, ttl):
        if not members:
            return
        pipe = self._for(key).pipeline(transaction=False)
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
        return sorted(m.decode() for m in self._for(key).smembers(PREFIX + key))

    def incr(self, counts):
        counts = {k: v for k, v in counts.items() if v}
        if not counts:
            return
        pipe = self.r.pipeline(transaction=False)
        for k, v in counts.items():
            pipe.hincrby(COUNTERS, k, v)
        pipe.execute()
        shared_counted(counts)

    def counters(self):
        return {k.decode(): int(v) for k, v in self.r.hgetall(COUNTERS).items()}

    # The failed-task store: capped by count and bytes, entries expire after FAILED_TTL; read in pages.
    _FAILED_KEYS = (FAILED_INDEX, FAILED_SIZES, FAILED_BYTES, COUNTERS)

    def put_failed(self, entry_id, entry, limits=(0, 0, 0.0)):
        """-> entries dropped to stay under the caps (the oldest first; expired ones are counted apart)."""
        max_entries, max_bytes, ttl = limits
        dropped, _expired = self.r.eval(
            _PUT_FAILED, len(self._FAILED_KEYS), *self._FAILED_KEYS, FAILED_ITEM, entry_id, json.dumps(entry),
            entry.get("time", time.time()), time.time(), int(max_entries), int(max_bytes), int(ttl * 1000))
        return int(dropped)

    def failed_page(self, start, count):
        """Entries `start` .. `start + count - 1` of the index (oldest first); an expired one is left out."""
        ids = [i.decode() for i in self.r.zrange(FAILED_INDEX, start, start + count - 1)]
        if not ids:
            return []
        return [json.loads(r) for r in self.r.mget([FAILED_ITEM + i for i in ids]) if r]

    def failed_ids_before(self, cutoff, count):
        return [i.decode() for i in self.r.zrangebyscore(FAILED_INDEX, "-inf", cutoff, start=0, num=count)]

    def count_failed(self):
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(FAILED_INDEX)
        pipe.get(FAILED_BYTES)
        n, size = pipe.execute()
        return int(n), int(size or 0)

    def list_failed(self):
        """Every entry, oldest first, read a page at a time (for small stores and tests: the CLI pages)."""
        out, start, total = [], 0, self.r.zcard(FAILED_INDEX)
        while start < total:
            out += self.failed_page(start, 500)
            start += 500
        return out

    def failed_count(self):
        return int(self.r.zcard(FAILED_INDEX))

    def get_failed(self, entry_id):
        raw = self.r.get(FAILED_ITEM + entry_id)
        return json.loads(raw) if raw else None

    def delete_failed(self, entry_id):
        return bool(self.r.eval(_DELETE_FAILED, 3, *self._FAILED_KEYS[:3], FAILED_ITEM, entry_id))

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

"""The store of the embedded mode (`scout run` without Redis: one process), with the same methods and
bounded sizes; and the producer's small local memory of seen names in front of a shared store."""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict

from scout.counters import shared_counted
from scout.store.base import Store


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
        self.failed_sizes: dict[str, int] = {}

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
        shared_counted(counts)

    def counters(self):
        with self.lock:
            return dict(self.counts)

    def put_failed(self, entry_id, entry, limits=(0, 0, 0.0)):
        """As RedisStore.put_failed: capped by count and bytes, the oldest dropped first, expired ones too."""
        max_entries, max_bytes, ttl = limits
        body = json.dumps(entry)
        with self.lock:
            self.failed.pop(entry_id, None)
            self.failed[entry_id] = json.loads(body)
            self.failed_sizes[entry_id] = len(body)
            order = sorted(self.failed, key=lambda i: self.failed[i].get("time", 0))
            expired = [i for i in order if ttl and i != entry_id and self.failed[i].get("time", 0) < time.time() - ttl]
            for i in expired:
                self._drop_failed(i)
            dropped = 0
            order = [i for i in order if i not in expired]
            while len(order) > 1 and ((max_entries and len(order) > max_entries)
                                      or (max_bytes and sum(self.failed_sizes.values()) > max_bytes)):
                self._drop_failed(order.pop(0))
                dropped += 1
            for k, v in (("failed_dropped", dropped), ("failed_expired", len(expired))):
                if v:
                    self.counts[k] = self.counts.get(k, 0) + v
            return dropped

    def _drop_failed(self, entry_id):
        self.failed.pop(entry_id, None)
        self.failed_sizes.pop(entry_id, None)

    def failed_page(self, start, count):
        return self.list_failed()[start:start + count]

    def failed_ids_before(self, cutoff, count):
        return [e["id"] for e in self.list_failed() if e.get("time", 0) <= cutoff][:count]

    def count_failed(self):
        with self.lock:
            return len(self.failed), sum(self.failed_sizes.values())

    def list_failed(self):
        with self.lock:
            return sorted(self.failed.values(), key=lambda e: e.get("time", 0))

    def failed_count(self):
        with self.lock:
            return len(self.failed)

    def get_failed(self, entry_id):
        with self.lock:
            return self.failed.get(entry_id)

    def delete_failed(self, entry_id):
        with self.lock:
            self.failed_sizes.pop(entry_id, None)
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

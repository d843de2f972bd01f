"""Shared state of the pipeline: seen-domain de-duplication, WHOIS caches, in-flight locks, pending
documents, counters, the in-flight ledger and the failed-task store.

`RedisStore` (redis_store.py) is what a fleet shares; `MemoryStore` (memory.py) serves the embedded mode
(one process, no Redis) with the same methods (the interface: base.py). `get_store()` is the process's
store, chosen by REDIS_URL.

May import: config, counters.
"""
from __future__ import annotations

import threading

from scout.config import get_settings
from scout.store.base import COUNTERS, FAILED_INDEX, FAILED_ITEM, LEDGER, LEDGER_ITEMS, PREFIX, Store
from scout.store.memory import LocalSeenCache, MemoryStore, with_local_seen
from scout.store.redis_store import RedisStore

__all__ = ["COUNTERS", "FAILED_INDEX", "FAILED_ITEM", "LEDGER", "LEDGER_ITEMS", "PREFIX", "LocalSeenCache",
           "MemoryStore", "RedisStore", "Store", "get_store", "set_store", "with_local_seen"]

_store: Store | None = None
_store_lock = threading.Lock()


def get_store() -> Store:
    """The process's store: Redis when REDIS_URL (or a Redis BROKER_URL) is set, else in memory."""
    global _store
    with _store_lock:
        if _store is None:
            s = get_settings()
            _store = RedisStore(s.redis_url, s.cache_redis_url) if s.redis_url else MemoryStore()
        return _store


def set_store(store: Store | None) -> None:
    global _store
    with _store_lock:
        _store = store

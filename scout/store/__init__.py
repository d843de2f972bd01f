from scout.store.redis_store import (COUNTERS, FAILED_INDEX, FAILED_ITEM, LEDGER, LEDGER_ITEMS, PREFIX,  # noqa: F401
                                     LocalSeenCache, MemoryStore, RedisStore, Store, get_store, set_store,
                                     with_local_seen)

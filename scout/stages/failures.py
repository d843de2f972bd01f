"""The failed-task store's entries: a task that used up its retries is kept with everything needed to
run it again (`scout failed retry`), and its domains leave the in-flight ledger (they are accounted for).

The store is bounded (FAILED_MAX_ENTRIES, FAILED_MAX_BYTES, each entry kept FAILED_TTL): when a new entry
would pass a cap the oldest entries go first, counted as `failed_dropped` (`failed_expired` for age)."""
from __future__ import annotations

import logging
import time
import traceback
import uuid

from scout.config import get_settings
from scout.stages.chain import STAGES, rest_of_chain, settle

log = logging.getLogger(__name__)


def record_failure(store, *, task: str, stage: str, args: list, kwargs: dict | None = None,
                   exc: BaseException | str, attempts: int, tb: str | None = None,
                   queue: str | None = None) -> str:
    """Put a task that used up its retries in the failed store, with all needed to run it again."""
    entry_id = uuid.uuid4().hex[:12]
    items = args[0] if stage in STAGES and args and isinstance(args[0], list) else []
    entry = {
        "id": entry_id, "task": task, "stage": stage, "queue": queue, "args": args,
        "kwargs": kwargs or {}, "rest_of_chain": rest_of_chain(stage),
        "exception": exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}",
        "traceback": tb if tb is not None else (
            "" if isinstance(exc, str) else "".join(traceback.format_exception(exc))),
        "time": time.time(), "attempts": attempts,
        "domains": [it.get("d") for it in items if isinstance(it, dict)],
    }
    s = get_settings()
    dropped = store.put_failed(entry_id, entry, (s.failed_max_entries, s.failed_max_bytes, s.failed_ttl))
    if dropped:
        log.warning("failed store full (FAILED_MAX_ENTRIES=%d, FAILED_MAX_BYTES=%d): dropped the %d oldest "
                    "entries (counted as failed_dropped)", s.failed_max_entries, s.failed_max_bytes, dropped)
    settle(store, items)  # recorded here: no longer in flight
    store.incr({"domains_failed": len(entry["domains"]), "tasks_failed": 1, f"tasks_failed:{stage}": 1})
    log.warning("task %s failed for good after %d attempts (%s); recorded as %s",
                task, attempts, entry["exception"][:200], entry_id)
    return entry_id

"""`scout import`: documents into the store, in batches, idempotent (merge_imported keeps the later
sighting, the earliest first_seen and the larger seen_count, so importing the same files twice changes
nothing). What is not a document is counted, never fatal."""
from __future__ import annotations

from collections.abc import Iterable

from scout.db.engine import SqlStore
from scout.db.rows import unusable
from scout.db.write import merge_imported, upsert_documents

IMPORT_BATCH = 500


def import_documents(store: SqlStore, docs: Iterable[dict | None], batch: int = IMPORT_BATCH) -> dict:
    """-> {"read": documents read, "skipped": items that were not documents, "written": rows written}."""
    counts = {"read": 0, "skipped": 0, "written": 0}
    pending: list[dict] = []
    for doc in docs:
        if unusable(doc):
            counts["skipped"] += 1
            continue
        counts["read"] += 1
        pending.append(doc)
        if len(pending) >= batch:
            counts["written"] += upsert_documents(store, pending, merge=merge_imported)
            pending = []
    if pending:
        counts["written"] += upsert_documents(store, pending, merge=merge_imported)
    return counts

"""The SQL store beside the document files (issue 17): one row per domain with its queryable fields as
columns, the whole document as JSON (JSONB on PostgreSQL), child tables for addresses and name servers.
SQLite (embedded, the default of `scout run`) and PostgreSQL (fleets) share one schema through SQLAlchemy
Core; psycopg 3 drives PostgreSQL.

    open_store(url) -> SqlStore          opens (and migrates) the store at STORE_URL
    Filters / Filters.from_query(dict)   what `scout query`, the web page and /api/ ask
    search(store, filters) -> [doc]      full documents, newest first_seen first
    count(store, filters) -> int
    get_document(store, domain) -> doc | None
    related(store, domain) -> {"ip": [...], "ns": [...], "registered_domain": [...]}
    overview(store) -> counts and the last hour's watchlist hits
    upsert_documents(store, docs, merge) one transaction per batch (save stage, `scout import`)
    prune_store(store, cutoff) -> rows deleted (count_prunable: how many would go)

Modules: schema (tables, indexes), migrations (the versioned runner), engine (open_store), filters
(Filters parsed from strings), query (the read side and the filters' SQL), write (upserts, updates,
prune), rows (document -> columns), importer (`scout import`), output (`scout query`'s formats).
The merge rule of a save is the caller's (scout.stages.save passes the files' own), so nothing here knows
about the stages.

May import: config, names.
"""
from scout.db.engine import SqlStore, StoreError, close_shared, open_store, shared_store
from scout.db.filters import FilterError, Filters
from scout.db.importer import import_documents
from scout.db.output import FORMATS, render
from scout.db.query import count, get_document, overview, related, search
from scout.db.write import count_prunable, merge_imported, prune_store, update_documents, upsert_documents

__all__ = ["FORMATS", "FilterError", "Filters", "SqlStore", "StoreError", "close_shared", "count", "count_prunable",
           "get_document", "import_documents", "merge_imported", "open_store", "overview", "prune_store", "related", "render",
           "search", "shared_store", "update_documents", "upsert_documents"]

"""`scout query` (ask the store), `scout import DIR` (document files into the store) and `scout prune
--older-than` (delete what was last seen long ago from the store)."""
from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stdout
from datetime import datetime, timezone
from pathlib import Path

from scout import db
from scout.cli.common import settings_from
from scout.config import NO_STORE, ConfigError, parse_duration
from scout.stages import files
from scout.stages.document import order_document

FILTER_OPTIONS = ("domain", "root", "ip", "asn", "ns", "registrar", "since", "until", "min_score",
                  "registered_within", "whois_status", "limit", "offset")


def add_commands(sub) -> None:
    q = sub.add_parser("query", help="ask the store (STORE_URL): filters combine with AND")
    q.add_argument("--domain", metavar="GLOB", help="*.example.com, paypal*")
    q.add_argument("--root", metavar="NAME", help="root domain")
    q.add_argument("--ip", metavar="ADDR|CIDR", help="an A/AAAA address, or any address inside a CIDR")
    q.add_argument("--asn", metavar="N", help="the ASN of any of its addresses")
    q.add_argument("--ns", metavar="NAME", help="a name server of its WHOIS/RDAP answer")
    q.add_argument("--registrar", metavar="TEXT", help="case-insensitive substring")
    q.add_argument("--since", metavar="T", help="first seen at or after T (ISO time, or 1h, 7d back from now)")
    q.add_argument("--until", metavar="T", help="first seen before T")
    q.add_argument("--min-score", metavar="N")
    q.add_argument("--registered-within", metavar="DURATION", help="registered at most this long before first seen")
    q.add_argument("--whois-status", metavar="S", help="ok, not_found, pending, ...")
    q.add_argument("--limit", metavar="N", default="50")
    q.add_argument("--offset", metavar="N", default="0")
    q.add_argument("--format", choices=db.FORMATS, default="table")
    q.add_argument("--count", action="store_true", help="print only how many domains match")
    q.set_defaults(func=cmd_query)

    im = sub.add_parser("import", help="load document files (OUTPUT_DIR) into the store (idempotent)")
    im.add_argument("dir", help="a directory of documents: DIR/<root_domain>/<domain>.json")
    im.set_defaults(func=cmd_import)

    files_prune = sub.choices.get("prune")
    if files_prune is None:
        pr = sub.add_parser("prune", help="delete domains last seen before a time from the store")
        pr.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 30d")
        pr.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
        pr.set_defaults(func=cmd_prune)
    else:  # `scout prune` of the files (scout/ops/prune.py) is there: the store is pruned after the files
        prune_files = files_prune.get_default("func")
        files_prune.set_defaults(func=lambda args: _files_then_store(prune_files, args))


def _store_url(s, default_dir: str | None) -> str:
    """STORE_URL; when empty, the embedded store of `scout run` if there is one (<dir>/scout.db)."""
    if s.store_url == NO_STORE:
        return ""
    if s.store_url:
        return s.store_url
    if default_dir and (Path(default_dir) / "scout.db").is_file():
        return f"sqlite:///{(Path(default_dir) / 'scout.db').resolve()}"
    return ""


def _open(url: str) -> db.SqlStore:
    if not url:
        raise ConfigError("STORE_URL: no store configured (sqlite:///PATH or postgresql://user:pass@host/db; "
                          "`scout run` keeps one at OUTPUT_DIR/scout.db)")
    try:
        return db.open_store(url)
    except db.StoreError as exc:
        raise ConfigError(str(exc)) from None


def cmd_query(args) -> int:
    s = settings_from(args)
    try:
        filters = db.Filters.from_query({k: getattr(args, k) for k in FILTER_OPTIONS})
    except db.FilterError as exc:
        print(f"scout query: {exc}", file=sys.stderr)
        return 2
    store = _open(_store_url(s, s.output_dir))
    try:
        if args.count:
            print(db.count(store, filters))
        else:
            sys.stdout.write(db.render([order_document(d) for d in db.search(store, filters)], args.format))
    finally:
        store.close()
    return 0


def cmd_import(args) -> int:
    s = settings_from(args)
    if not Path(args.dir).is_dir():
        print(f"scout import: {args.dir}: not a directory", file=sys.stderr)
        return 2
    store = _open(_store_url(s, None) or f"sqlite:///{(Path(args.dir) / 'scout.db').resolve()}")
    try:
        counts = db.import_documents(store, (doc for _, doc in files.iter_documents(args.dir)))
    finally:
        store.close()
    print(json.dumps(counts, sort_keys=True))
    return 0


def _prune_store(args, optional: bool = False) -> dict | None:
    """Prune (or with --dry-run count) the store. optional: no store configured is no error (None)."""
    s = settings_from(args)
    cutoff = datetime.now(timezone.utc).timestamp() - parse_duration("--older-than", args.older_than)
    url = _store_url(s, s.output_dir)
    if not url and optional:
        return None
    store = _open(url)
    cutoff_time = datetime.fromtimestamp(cutoff, timezone.utc)
    try:
        if getattr(args, "dry_run", False):
            return {"store_would_delete": db.count_prunable(store, cutoff_time)}
        return {"store_deleted": db.prune_store(store, cutoff_time)}
    finally:
        store.close()


def cmd_prune(args) -> int:
    print(json.dumps(_prune_store(args), sort_keys=True))
    return 0


def _files_then_store(prune_files, args) -> int:
    """The files' prune, then the store's; one JSON line: the files' object with the store's counts."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = prune_files(args)
    if code:
        sys.stdout.write(out.getvalue())
        return code
    store = _prune_store(args, optional=True)
    try:
        files = json.loads(out.getvalue()) if store else None
    except ValueError:
        files = None
    if isinstance(files, dict):
        print(json.dumps({**files, **store}, sort_keys=True))
    else:
        sys.stdout.write(out.getvalue())
        if store:
            print(json.dumps(store, sort_keys=True))
    return 0

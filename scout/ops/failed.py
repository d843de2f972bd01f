"""`scout failed`: the failed-task store (tasks that used up their retries), listed (in pages), shown, sent
again (a chain step with the rest of its chain) and purged (by age, or all of it with --all)."""
from __future__ import annotations

import json
import sys
import time

from scout.celery import app, configure
from scout.config import get_settings, parse_duration
from scout.stages.chain import STAGES, publish_chain
from scout.store import get_store


# The tasks outside the chain a failed entry may name (by its stage), sent again by name.
LOOSE_TASKS = {"lookup_domain_whois": "scout.lookup_domain_whois", "lookup_ip_whois": "scout.lookup_ip_whois",
               "apply_whois": "scout.apply_whois"}


def retry_entry(entry: dict) -> None:
    """Send a failed task again: a chain step with the rest of its chain, or a lookup on its queue."""
    # Entries from before the chain had one WHOIS step (domain_whois -> ip_whois) continue from it.
    stage = {"domain_whois": "whois", "ip_whois": "whois"}.get(entry["stage"], entry["stage"])
    if stage in STAGES:
        items = entry["args"][0]
        publish_chain(items, get_settings(), get_store(), stage)
    else:
        opts = {"queue": entry["queue"], "routing_key": entry["queue"]} if entry.get("queue") else {}
        app.signature(LOOSE_TASKS[stage]).apply_async(tuple(entry["args"]), entry.get("kwargs") or {}, **opts)


PAGE = 500   # entries read per round trip: the store may hold FAILED_MAX_ENTRIES (10,000) of up to ~1 MB


def iter_failed(store, limit: int = 0):
    """Every entry, oldest first, a page at a time (never one read of the whole store)."""
    start = shown = 0
    total, _ = store.count_failed()
    while start < total and (not limit or shown < limit):
        for e in store.failed_page(start, PAGE):
            if limit and shown >= limit:
                return
            shown += 1
            yield e
        start += PAGE


def _list(store, args) -> int:
    print(f"{'ID':12}  {'WHEN (UTC)':19}  {'TASK':26}  {'QUEUE':16}  {'TRIES':5}  {'DOMAINS':7}  ERROR")
    n = 0
    for e in iter_failed(store, args.limit):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["time"]))
        print(f"{e['id']:12}  {when:19}  {e['task']:26}  {str(e.get('queue') or '-'):16}  "
              f"{e['attempts']:5}  {len(e.get('domains', [])):7}  {e['exception'][:80]}", flush=not n % PAGE)
        n += 1
    total, size = store.count_failed()
    print(f"{n} failed task(s)" + (f" of {total} ({size} bytes)" if n < total else ""))
    return 0


def _retry(settings, store, args) -> int:
    configure(settings)
    if args.all or args.queue:
        chosen = [e for e in iter_failed(store) if args.all or e.get("queue") == args.queue]
    else:
        chosen = [e for e in (store.get_failed(i) for i in args.ids) if e is not None]
        missing = set(args.ids) - {e["id"] for e in chosen}
        if missing:
            print("no failed task " + ", ".join(sorted(missing)))
            if not chosen:
                return 1
    for e in chosen:
        retry_entry(e)
        store.delete_failed(e["id"])
        store.incr({"tasks_retried_by_hand": 1})
        print(f"retried {e['id']} ({e['task']}, {len(e.get('domains', []))} domains)")
    return 0


def _purge(store, args) -> int:
    if args.older_than is None and not args.all:
        print("scout failed purge: give --older-than DURATION (e.g. 7d), or --all to delete every entry",
              file=sys.stderr)
        return 2
    cutoff = float("inf") if args.older_than is None else time.time() - parse_duration("--older-than",
                                                                                        args.older_than)
    n = 0
    while ids := store.failed_ids_before(cutoff, PAGE):
        n += sum(1 for i in ids if store.delete_failed(i))
    print(f"purged {n} failed task(s)")
    return 0


def failed_command(settings, args) -> int:
    store = get_store()
    if args.action == "list":
        return _list(store, args)
    if args.action == "show":
        e = store.get_failed(args.id)
        if e is None:
            print(f"no failed task {args.id}")
            return 1
        print(json.dumps(e, indent=2))
        return 0
    if args.action == "retry":
        return _retry(settings, store, args)
    if args.action == "purge":
        return _purge(store, args)
    return 2

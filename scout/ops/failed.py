"""`scout failed`: the failed-task store (tasks that used up their retries), listed, shown, sent again
(a chain step with the rest of its chain) and purged by age."""
from __future__ import annotations

import json
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


def failed_command(settings, args) -> int:
    store = get_store()
    if args.action == "list":
        entries = store.list_failed()
        print(f"{'ID':12}  {'WHEN (UTC)':19}  {'TASK':26}  {'QUEUE':16}  {'TRIES':5}  {'DOMAINS':7}  ERROR")
        for e in entries:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["time"]))
            print(f"{e['id']:12}  {when:19}  {e['task']:26}  {str(e.get('queue') or '-'):16}  "
                  f"{e['attempts']:5}  {len(e.get('domains', [])):7}  {e['exception'][:80]}")
        print(f"{len(entries)} failed task(s)")
        return 0
    if args.action == "show":
        e = store.get_failed(args.id)
        if e is None:
            print(f"no failed task {args.id}")
            return 1
        print(json.dumps(e, indent=2))
        return 0
    if args.action == "retry":
        configure(settings)
        entries = store.list_failed()
        if args.all:
            chosen = entries
        elif args.queue:
            chosen = [e for e in entries if e.get("queue") == args.queue]
        else:
            wanted = set(args.ids)
            chosen = [e for e in entries if e["id"] in wanted]
            missing = wanted - {e["id"] for e in chosen}
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
    if args.action == "purge":
        cutoff = time.time() - parse_duration("--older-than", args.older_than)
        n = 0
        for e in store.list_failed():
            if e["time"] <= cutoff and store.delete_failed(e["id"]):
                n += 1
        print(f"purged {n} failed task(s)")
        return 0
    return 2

"""`scout stats`, `scout failed …`, `scout prune` and `scout sweep`: looking at and mending a running
installation."""
from __future__ import annotations

import json
import time

from scout.celery import configure
from scout.cli.common import settings_from
from scout.config import ConfigError, parse_duration
from scout.ops.canary import run_canary
from scout.ops.failed import failed_command
from scout.ops.prune import prune_files
from scout.ops.stats import collect_stats, format_stats
from scout.producer.ledger import sweep_older_than
from scout.store import get_store


def cmd_stats(args) -> int:
    stats = collect_stats(settings_from(args))
    print(json.dumps(stats, indent=2, sort_keys=True) if args.json else format_stats(stats))
    return 0


def cmd_failed(args) -> int:
    return failed_command(settings_from(args), args)


def cmd_prune(args) -> int:
    """Documents last seen longer ago than --older-than leave OUTPUT_DIR and the SQL store (when there is
    one); prints what was done as JSON."""
    s = settings_from(args)
    cutoff = time.time() - parse_duration("--older-than", args.older_than)
    counts = prune_files(s.output_dir, cutoff, dry_run=args.dry_run)
    print(json.dumps({"output_dir": s.output_dir, "dry_run": args.dry_run, **counts}, sort_keys=True))
    return 0


def cmd_sweep(args) -> int:
    """Send again the domains enqueued longer ago than LEDGER_TIMEOUT (or --older-than) and neither saved
    nor failed. The producer and the bridge do this on their own; this is for when neither runs."""
    s = settings_from(args)
    if not s.broker_url or not s.redis_url:
        raise ConfigError("BROKER_URL/REDIS_URL: the ledger lives in Redis and chains go to a shared broker")
    if s.ledger_timeout <= 0:
        raise ConfigError("LEDGER_TIMEOUT=0s: the ledger is off, nothing to sweep")
    configure(s)
    older = parse_duration("--older-than", args.older_than) if args.older_than else s.ledger_timeout
    store = get_store()
    total = sweep_older_than(s, store, older)
    in_flight, overdue = store.in_flight(time.time())
    print(json.dumps({"resent": total, "in_flight": in_flight, "overdue": overdue}))
    return 0


def cmd_canary(args) -> int:
    """Send a canary domain through the queues and wait for it: exit 0 when it was saved in time, else 1."""
    s = settings_from(args)
    if not s.broker_url or not s.redis_url:
        raise ConfigError("BROKER_URL/REDIS_URL: the canary goes through the workers' broker and comes back "
                          "through the shared store (`scout run` with CANARY_INTERVAL checks itself)")
    timeout = parse_duration("--timeout", args.timeout)
    configure(s)
    report = run_canary(s, get_store(), timeout)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    elif report["ok"]:
        stages = "  ".join(f"{k}={v:.3f}s" for k, v in report["latency"].items())
        print(f"canary {report['domain']}: saved  {stages}")
    else:
        print(f"canary {report['domain']}: FAILED: {report.get('error')}  {report.get('latency')}")
    return 0 if report["ok"] else 1

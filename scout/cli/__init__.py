"""`scout` command line: parsing and dispatch only; each command group is a module of its own, thin over
the code it runs: run.py (run, produce), worker.py (worker, flower, bridge), ops.py (stats, failed,
prune, sweep, canary), score.py (score), store.py (query, import), web.py (web); `replay-server` and `record` go to
scout.sources.

May import: everything (the top of the house: nothing imports it but `python -m scout`).
"""
from __future__ import annotations

import argparse
import logging
import sys

from scout.cli import ops, run, score, store, web, worker
from scout.cli.common import setup_logging
from scout.config import ConfigError, env_file, load_settings, outbound_url_warnings
from scout.sources import record, replay

log = logging.getLogger("scout")

# Commands that parse their own options: everything after the command name is theirs.
PASSTHROUGH = {"replay-server": replay.main_replay, "record": record.main_record, "score": score.main}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scout", description="Certificate Transparency domain watcher and enricher")
    p.add_argument("--env-file", default=env_file(),
                   help="read variables from this file too (default: $SCOUT_ENV_FILE, else .env)")
    sub = p.add_subparsers(dest="command", required=True)
    _add_pipeline_commands(sub)
    _add_worker_commands(sub)
    _add_ops_commands(sub)
    store.add_commands(sub)
    _add_web_command(sub)
    for name, help_text in (("replay-server", "serve a recording in certstream-server-go's wire format"),
                            ("record", "write a live feed to a JSONL recording"),
                            ("score", "watchlist score of names")):
        x = sub.add_parser(name, help=help_text, add_help=False)
        x.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _add_pipeline_commands(sub) -> None:
    r = sub.add_parser("run", help="producer and every worker in one process")
    r.add_argument("--source", help="a JSONL recording of certstream frames instead of the live feed")
    r.add_argument("--url", help="certstream websocket URL (overrides CERTSTREAM_URL)")
    r.add_argument("--output-dir", help="overrides OUTPUT_DIR")
    r.add_argument("--workers", action="store_true", help="run workers in this process even with BROKER_URL set")
    r.add_argument("--stall-timeout", type=float, default=600.0,
                   help="with --source: give up when nothing progressed for this many seconds")
    r.set_defaults(func=run.cmd_run)

    pr = sub.add_parser("produce", help="the producer alone (workers run as `scout worker`)")
    pr.add_argument("--source", help="publish a JSONL recording, then exit")
    pr.add_argument("--url", help="certstream websocket URL")
    pr.add_argument("--sink", choices=("celery", "nats"), help="overrides SINK")
    pr.set_defaults(func=run.cmd_produce)


def _add_worker_commands(sub) -> None:
    w = sub.add_parser("worker", help="a Celery worker for one stage")
    w.add_argument("stage", choices=("dns", "whois", "lookup", "save", "all"))
    w.add_argument("--ip", help="lookup stage: the source address (one of WHOIS_IPS)")
    w.add_argument("celery_args", nargs=argparse.REMAINDER, help="extra `celery worker` options after --")
    w.set_defaults(func=worker.cmd_worker)

    f = sub.add_parser("flower", help="Flower against the app, with FLOWER_BASIC_AUTH")
    f.add_argument("--port", type=int, default=5555)
    f.add_argument("--address", default="127.0.0.1")
    f.add_argument("--no-auth", action="store_true")
    f.add_argument("flower_args", nargs=argparse.REMAINDER)
    f.set_defaults(func=worker.cmd_flower)

    b = sub.add_parser("bridge", help="NATS JetStream -> Celery chains")
    b.set_defaults(func=worker.cmd_bridge)


def _add_ops_commands(sub) -> None:
    st = sub.add_parser("stats", help="queue depths, counters, cache hit rates")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=ops.cmd_stats)

    fl = sub.add_parser("failed", help="tasks that used up their retries")
    fsub = fl.add_subparsers(dest="action", required=True)
    ls = fsub.add_parser("list")
    ls.add_argument("--limit", type=int, default=0, help="show at most this many (oldest first)")
    sh = fsub.add_parser("show")
    sh.add_argument("id")
    rt = fsub.add_parser("retry")
    rt.add_argument("ids", nargs="*")
    rt.add_argument("--all", action="store_true")
    rt.add_argument("--queue")
    pu = fsub.add_parser("purge")
    pu.add_argument("--older-than", help="delete entries older than this, e.g. 7d")
    pu.add_argument("--all", action="store_true", help="delete every entry")
    fl.set_defaults(func=ops.cmd_failed)

    pr = sub.add_parser("prune", help="delete documents last seen before a cutoff, then empty folders")
    pr.add_argument("--older-than", required=True, help="e.g. 30d: documents whose last_seen is older go")
    pr.add_argument("--output-dir", help="overrides OUTPUT_DIR")
    pr.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    pr.set_defaults(func=ops.cmd_prune)
    ca = sub.add_parser("canary", help="send a synthetic domain through the pipeline and time it (exit 1: not saved in time)")
    ca.add_argument("--timeout", default="60s", help="give up after this long (default 60s)")
    ca.add_argument("--json", action="store_true")
    ca.set_defaults(func=ops.cmd_canary)

    sw = sub.add_parser("sweep", help="send again the enqueued domains that were neither saved nor failed in time")
    sw.add_argument("--older-than", help="instead of LEDGER_TIMEOUT, e.g. 10m")
    sw.set_defaults(func=ops.cmd_sweep)


def _add_web_command(sub) -> None:
    wb = sub.add_parser("web", help="web page and JSON API over the store (STORE_URL)")
    wb.add_argument("--host", help="address to bind (default WEB_HOST, 127.0.0.1); beyond loopback "
                                   "WEB_BASIC_AUTH is required")
    wb.add_argument("--port", type=int, help="default WEB_PORT, 8000")
    wb.add_argument("--output-dir", help="overrides OUTPUT_DIR (where the embedded store is looked for)")
    wb.set_defaults(func=web.cmd_web)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(argv):
        if a in PASSTHROUGH:
            try:
                return PASSTHROUGH[a](argv[i + 1:])
            except ConfigError as exc:
                print(f"scout: configuration error: {exc}", file=sys.stderr)
                return 2
        if not a.startswith("-"):
            break
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(dotenv=args.env_file)
        setup_logging(settings.log_level)
        for warning in outbound_url_warnings(settings):
            log.warning("%s", warning)
        return args.func(args) or 0
    except ConfigError as exc:
        print(f"scout: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

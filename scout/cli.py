"""`scout` command line: run, produce, worker, flower, stats, failed, bridge, replay-server, record, score."""
from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time

from .config import ConfigError, Settings, _replace, load_settings, outbound_url_warnings, redact_url

log = logging.getLogger("scout")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("celery.worker.strategy", "celery.app.trace", "kombu", "amqp", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _settings(args) -> Settings:
    s = load_settings(dotenv=getattr(args, "env_file", ".env"))
    changes = {}
    if getattr(args, "url", None):
        changes.update(certstream_url=args.url, source="certstream")
    if getattr(args, "sink", None):
        changes["sink"] = args.sink
    if getattr(args, "output_dir", None):
        changes["output_dir"] = args.output_dir
    return _replace(s, **changes) if changes else s


# ---------------------------------------------------------------------- producer side

def _make_producer(s: Settings, counters):
    from .producer import Producer
    from .store import get_store, with_local_seen

    store = with_local_seen(get_store())  # one store for producer and sink: a dropped name is forgotten by both
    watchlist = None
    if s.enrich == "watchlist":
        from .watchlist import WatchlistError, WatchlistHolder

        try:
            watchlist = WatchlistHolder(s.watchlist_file or None)
        except WatchlistError as exc:  # nothing to filter with: stop at start, exit 2
            raise ConfigError(f"WATCHLIST_FILE={s.watchlist_file!r}: {exc}") from None
    if s.sink == "nats":
        from .nats_sink import NatsSink

        sink = NatsSink(s, counters)
    else:
        from .celery import app
        from .enqueue import CelerySink

        sink = CelerySink(s, store, counters, app=app)
    return Producer(s, sink, store, counters, watchlist), store


def _start_feed(s: Settings, frames: "queue.Queue[str]", counters, stop: threading.Event) -> threading.Thread:
    def put(text):
        # CT readers can wait (their logs keep the entries; the state file must not skip them),
        # unlike a websocket, whose server drops frames for slow readers.
        while not stop.is_set():
            try:
                frames.put(text, timeout=0.5)
                return
            except queue.Full:
                counters.incr("ct_buffer_full_waits")

    if s.source == "certstream" and not s.certstream_url:
        raise ConfigError("CERTSTREAM_URL: SOURCE=certstream needs a ws:// or wss:// URL "
                          "(or leave SOURCE empty to read CT logs directly)")
    if s.source == "ct":
        from .ct.reader import CTSource

        src = CTSource(s, lambda frame: put(json.dumps(frame)), stop, counters)
        target = src.run
    else:
        from .feed import WebSocketFeed

        feed = WebSocketFeed(s.certstream_url, frames, counters, stop)
        target = feed.run
    t = threading.Thread(target=target, name="feed", daemon=True)
    t.start()
    return t


def _install_stop_signals(stop: threading.Event) -> None:
    def handler(signum, frame):
        if stop.is_set():
            raise SystemExit(130)  # second signal: leave now
        log.info("signal %s: stopping after flushing what is buffered", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _replay_file(producer, path: str) -> None:
    from .feed import read_recording

    for n, line in enumerate(read_recording(path)):
        producer.handle_frame(line)
        if n % 64 == 0:
            producer.tick()
    producer.close()


def _live(s: Settings, producer, counters, stop: threading.Event) -> None:
    from .producer import consume

    frames: queue.Queue = queue.Queue(maxsize=s.frame_buffer)
    feed_thread = _start_feed(s, frames, counters, stop)
    log.info("reading %s", redact_url(s.certstream_url) if s.source == "certstream" else "CT logs directly")
    consume(producer, frames, stop, summary_every=s.stats_interval)
    feed_thread.join(10)
    producer.close()


def _wait_until_done(store, before: dict, enqueued_fn, stall_timeout: float = 600.0,
                     stop: threading.Event | None = None) -> dict:
    """Until every enqueued domain is saved or failed and every WHOIS lookup started has landed."""
    last_progress, last_key = time.monotonic(), None
    while True:
        if stop is not None and stop.is_set():
            raise TimeoutError("stopped by a signal before the work was finished")
        c = store.counters()

        def d(k):
            return c.get(k, 0) - before.get(k, 0)

        done = d("domains_saved") + d("domains_failed")
        key = (done, d("whois_landed"), d("documents_whois_updated"))
        if done >= enqueued_fn() and d("whois_landed") >= d("whois_dispatched"):
            return {k: d(k) for k in set(c) | set(before)}
        if key != last_key:
            last_key, last_progress = key, time.monotonic()
        elif time.monotonic() - last_progress > stall_timeout:
            raise TimeoutError(f"no progress for {stall_timeout:.0f} s ({done} of {enqueued_fn()} done)")
        time.sleep(0.1)


def cmd_run(args) -> int:
    s = _settings(args)
    return run_pipeline(s, source=args.source, embedded_workers=not s.broker_url or args.workers,
                        stall_timeout=args.stall_timeout)


def run_pipeline(s: Settings, source: str | None = None, embedded_workers: bool = True,
                 stall_timeout: float = 600.0) -> int:
    from .celery import configure
    from .counters import Counters
    from .embedded import EmbeddedWorkers

    app = configure(s)
    counters = Counters()
    producer, store = _make_producer(s, counters)
    before = store.counters()
    workers = EmbeddedWorkers(app, s) if embedded_workers else None
    if workers:
        workers.start()
    started = time.monotonic()
    stop = threading.Event()
    _install_stop_signals(stop)
    bridge_stop, bridge = threading.Event(), None
    if s.sink == "nats":  # SINK=nats in one process: producer -> JetStream -> this bridge -> workers
        from .bridge import Bridge

        bridge = Bridge(s, counters).start_thread(bridge_stop)
    try:
        if source:
            _replay_file(producer, source)
            try:
                delta = _wait_until_done(store, before, lambda: _enqueued(counters), stall_timeout, stop)
            except TimeoutError as exc:
                log.error("%s", exc)
                return 1
            c = counters.snapshot()
            summary = {
                "frames": c.get("frames", 0), "domains_seen": c.get("names", 0),
                "unique": c.get("unique", 0), "saved": delta.get("domains_saved", 0),
                "failed": delta.get("domains_failed", 0),
                "whois_lookups": delta.get("whois_dispatched", 0),
                "skipped": {k: v for k, v in c.items() if "skipped" in k or k.startswith("frames_")},
                "seconds": round(time.monotonic() - started, 3),
            }
            print(json.dumps(summary, sort_keys=True))
            return 0
        _live(s, producer, counters, stop)
        if workers:
            _drain_embedded(store, before, counters)
        return 0
    finally:
        if bridge is not None:
            bridge_stop.set()
            bridge.join(15)
        if workers:
            workers.stop()


def _enqueued(counters) -> int:
    """Domains the pipeline must finish: enqueued on the broker, or published to NATS (SINK=nats)."""
    return max(counters.get("enqueued"), counters.get("nats_published"))


def _drain_embedded(store, before, counters, timeout: float = 60.0) -> None:
    """Embedded broker: queued work lives in this process; finish it before exiting (bounded)."""
    try:
        _wait_until_done(store, before, lambda: _enqueued(counters), stall_timeout=timeout)
    except TimeoutError as exc:
        log.warning("stopping with work unfinished: %s", exc)


def cmd_produce(args) -> int:
    from .celery import configure
    from .counters import Counters

    s = _settings(args)
    if not s.broker_url and s.sink == "celery":
        raise ConfigError("BROKER_URL: `scout produce` needs a broker shared with the workers "
                          "(e.g. redis://127.0.0.1:6379/0); `scout run` works without one")
    configure(s)
    counters = Counters()
    producer, _ = _make_producer(s, counters)
    stop = threading.Event()
    _install_stop_signals(stop)
    if args.source:
        _replay_file(producer, args.source)
    else:
        _live(s, producer, counters, stop)
    print(json.dumps(counters.snapshot(), sort_keys=True))
    return 0


# ---------------------------------------------------------------------- workers, flower

def worker_argv(s: Settings, stage: str, ip: str | None = None, extra: list[str] | None = None) -> list[str]:
    """The `celery worker` command line for one stage."""
    # No gossip or mingle: workers need not know each other (Flower uses events), and both stalled
    # workers on reconnect after a Redis restart.
    base = [sys.executable, "-m", "celery", "-A", "scout", "worker", "-P", "threads",
            "-l", s.log_level, "-E", "--without-gossip", "--without-mingle"]
    if stage == "dns":
        argv = base + ["-Q", "dns", "-c", str(s.dns_workers), "-n", "dns@%h"]
    elif stage == "whois":
        argv = base + ["-Q", "whois", "-c", "8", "-n", "whois@%h"]
    elif stage == "lookup":
        queue_name = f"whois.{ip}" if ip else "whois.default"
        if queue_name not in s.whois_queues:
            raise ConfigError(f"WHOIS_IPS={','.join(s.whois_ips)!r}: no lookup queue {queue_name}")
        argv = base + ["-Q", queue_name, "-c", str(s.whois_workers), "-n", f"{queue_name}@%h"]
    elif stage == "save":
        argv = base + ["-Q", "save", "-c", "8", "-n", "save@%h"]
    elif stage == "all":
        queues = ",".join(["dns", "whois", "save"] + s.whois_queues)
        argv = base + ["-Q", queues, "-c", str(s.dns_workers), "-n", "all@%h"]
    else:
        raise ConfigError(f"unknown stage {stage!r}: dns, whois, lookup, save or all")
    return argv + (extra or [])


def cmd_worker(args) -> int:
    s = _settings(args)
    if not s.broker_url:
        raise ConfigError("BROKER_URL: a separate worker needs a broker (e.g. redis://127.0.0.1:6379/0)")
    extra, ip = list(args.celery_args or []), args.ip
    # `scout worker lookup --ip A [-- celery options]`: REMAINDER takes everything after the stage,
    # --ip included, so take it back out here.
    for i, a in enumerate(extra):
        if a == "--":
            break
        if a == "--ip" and i + 1 < len(extra):
            ip = extra[i + 1]
            del extra[i:i + 2]
            break
        if a.startswith("--ip="):
            ip = a.split("=", 1)[1]
            del extra[i]
            break
    if extra and extra[0] == "--":
        extra = extra[1:]
    if ip:
        check_bindable(ip)
    argv = worker_argv(s, args.stage, ip, extra)
    log.info("exec %s", " ".join(argv))
    os.execv(sys.executable, argv)
    return 0  # not reached


def check_bindable(ip: str) -> None:
    """A WHOIS worker must own its source address: fail at start, not at the first lookup."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError as exc:
            raise ConfigError(f"WHOIS_IPS: cannot bind source address {ip} on this host ({exc})") from None


def cmd_flower(args) -> int:
    s = _settings(args)
    if not s.broker_url:
        raise ConfigError("BROKER_URL: Flower watches a broker shared with the workers")
    argv = [sys.executable, "-m", "celery", "-A", "scout", "flower", f"--port={args.port}",
            f"--address={args.address}"]
    env = flower_env(s, os.environ)
    if not s.flower_basic_auth and not args.no_auth:
        raise ConfigError("FLOWER_BASIC_AUTH: set user:password (or pass --no-auth on a trusted host)")
    os.execve(sys.executable, argv + list(args.flower_args or []), env)
    return 0


def flower_env(s: Settings, environ) -> dict:
    """Flower's environment: the password travels as FLOWER_BASIC_AUTH (Flower reads FLOWER_* options from
    its environment), never on the command line, where every user sees it in `ps` and /proc/*/cmdline.
    It may come from .env, so it is set here; an empty value is removed (Flower would take it as a user)."""
    env = dict(environ)
    env.pop("FLOWER_BASIC_AUTH", None)
    if s.flower_basic_auth:
        env["FLOWER_BASIC_AUTH"] = s.flower_basic_auth
    return env


# ---------------------------------------------------------------------- stats and failed tasks

def cmd_stats(args) -> int:
    from .ops import collect_stats, format_stats

    s = _settings(args)
    stats = collect_stats(s)
    print(json.dumps(stats, indent=2, sort_keys=True) if args.json else format_stats(stats))
    return 0


def cmd_failed(args) -> int:
    from . import ops

    s = _settings(args)
    return ops.failed_command(s, args)


def cmd_sweep(args) -> int:
    """Send again the domains enqueued longer ago than LEDGER_TIMEOUT (or --older-than) and neither saved
    nor failed. The producer and the bridge do this on their own; this is for when neither runs."""
    import time

    from .celery import configure
    from .config import parse_duration
    from .ledger import sweep
    from .store import get_store

    s = _settings(args)
    if not s.broker_url or not s.redis_url:
        raise ConfigError("BROKER_URL/REDIS_URL: the ledger lives in Redis and chains go to a shared broker")
    if s.ledger_timeout <= 0:
        raise ConfigError("LEDGER_TIMEOUT=0s: the ledger is off, nothing to sweep")
    configure(s)
    older = parse_duration("--older-than", args.older_than) if args.older_than else s.ledger_timeout
    store = get_store()
    total = 0
    cutoff = time.time() + s.ledger_timeout - older   # fixed: what is re-sent now is due again later
    while True:  # every overdue domain, a bounded number of batches at a time
        sent = sweep(s, store, now=cutoff)
        total += sent
        if sent == 0:
            break
    in_flight, overdue = store.in_flight(time.time())
    print(json.dumps({"resent": total, "in_flight": in_flight, "overdue": overdue}))
    return 0


def cmd_bridge(args) -> int:
    from .bridge import main_bridge

    return main_bridge(_settings(args), args)


# ---------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scout", description="Certificate Transparency domain watcher and enricher")
    p.add_argument("--env-file", default=".env", help="read variables from this file too (default .env)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="producer and every worker in one process")
    r.add_argument("--source", help="a JSONL recording of certstream frames instead of the live feed")
    r.add_argument("--url", help="certstream websocket URL (overrides CERTSTREAM_URL)")
    r.add_argument("--output-dir", help="overrides OUTPUT_DIR")
    r.add_argument("--workers", action="store_true", help="run workers in this process even with BROKER_URL set")
    r.add_argument("--stall-timeout", type=float, default=600.0,
                   help="with --source: give up when nothing progressed for this many seconds")
    r.set_defaults(func=cmd_run)

    pr = sub.add_parser("produce", help="the producer alone (workers run as `scout worker`)")
    pr.add_argument("--source", help="publish a JSONL recording, then exit")
    pr.add_argument("--url", help="certstream websocket URL")
    pr.add_argument("--sink", choices=("celery", "nats"), help="overrides SINK")
    pr.set_defaults(func=cmd_produce)

    w = sub.add_parser("worker", help="a Celery worker for one stage")
    w.add_argument("stage", choices=("dns", "whois", "lookup", "save", "all"))
    w.add_argument("--ip", help="lookup stage: the source address (one of WHOIS_IPS)")
    w.add_argument("celery_args", nargs=argparse.REMAINDER, help="extra `celery worker` options after --")
    w.set_defaults(func=cmd_worker)

    f = sub.add_parser("flower", help="Flower against the app, with FLOWER_BASIC_AUTH")
    f.add_argument("--port", type=int, default=5555)
    f.add_argument("--address", default="127.0.0.1")
    f.add_argument("--no-auth", action="store_true")
    f.add_argument("flower_args", nargs=argparse.REMAINDER)
    f.set_defaults(func=cmd_flower)

    st = sub.add_parser("stats", help="queue depths, counters, cache hit rates")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_stats)

    fl = sub.add_parser("failed", help="tasks that used up their retries")
    fsub = fl.add_subparsers(dest="action", required=True)
    fsub.add_parser("list")
    sh = fsub.add_parser("show")
    sh.add_argument("id")
    rt = fsub.add_parser("retry")
    rt.add_argument("ids", nargs="*")
    rt.add_argument("--all", action="store_true")
    rt.add_argument("--queue")
    pu = fsub.add_parser("purge")
    pu.add_argument("--older-than", default="0s")
    fl.set_defaults(func=cmd_failed)

    sw = sub.add_parser("sweep", help="send again the enqueued domains that were neither saved nor failed in time")
    sw.add_argument("--older-than", help="instead of LEDGER_TIMEOUT, e.g. 10m")
    sw.set_defaults(func=cmd_sweep)

    b = sub.add_parser("bridge", help="NATS JetStream -> Celery chains")
    b.set_defaults(func=cmd_bridge)

    for name, help_text in (("replay-server", "serve a recording in certstream-server-go's wire format"),
                            ("record", "write a live feed to a JSONL recording"),
                            ("score", "watchlist score of names")):
        x = sub.add_parser(name, help=help_text, add_help=False)
        x.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # These three parse their own options.
    passthrough = {"replay-server": ("scout.replay", "main_replay"), "record": ("scout.record", "main_record"),
                   "score": ("scout.score_cli", "main")}
    for i, a in enumerate(argv):
        if a in passthrough:
            import importlib

            mod, fn = passthrough[a]
            try:
                return getattr(importlib.import_module(mod), fn)(argv[i + 1:])
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

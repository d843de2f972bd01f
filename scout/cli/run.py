"""`scout run` (producer and every worker in one process) and `scout produce` (the producer alone)."""
from __future__ import annotations

import json
import logging
import threading
import time

from scout.celery import configure
from scout.cli.common import install_stop_signals, settings_from
from scout.config import NO_STORE, ConfigError, Settings, _replace, check_outputs, store_url_of
from scout.counters import Counters
from scout.ops.canary import CanaryLoop
from scout.ops.embedded import EmbeddedWorkers, drain, enqueued, wait_until_done
from scout.ops.metrics import serve_pipeline_metrics
from scout.ops.stats import watch_consumers
from scout.producer.bridge import Bridge
from scout.producer.producer import build_producer, replay_file, run_live
from scout.stages import files
from scout.store import get_store

log = logging.getLogger("scout")


def cmd_run(args) -> int:
    s = settings_from(args)
    embedded_workers = not s.broker_url or args.workers
    if embedded_workers:  # this process saves: the embedded store by default (sqlite:///<OUTPUT_DIR>/scout.db)
        url = store_url_of(s, embedded=True)
        check_outputs(s, url)
        check_output_dir(s)   # the embedded store lives there too
        s = _replace(s, store_url=url or NO_STORE)
    return run_pipeline(s, source=args.source, embedded_workers=embedded_workers,
                        stall_timeout=args.stall_timeout)


def check_output_dir(s: Settings) -> None:
    """Workers in this process write documents: a folder that cannot be created or written is a
    configuration error now, not a save task retrying for minutes later."""
    problem = files.check_output_dir(s.output_dir)
    if problem:
        raise ConfigError(f"OUTPUT_DIR={s.output_dir!r}: documents cannot be written there ({problem})")


def run_pipeline(s: Settings, source: str | None = None, embedded_workers: bool = True,
                 stall_timeout: float = 600.0) -> int:
    """The producer, in-process workers (embedded broker, or with --workers) and with SINK=nats an
    in-process bridge: a recording until every domain is done (exit 1 when it stalls), or the live feed
    until a signal."""
    app = configure(s)
    counters = Counters()
    producer, store = build_producer(s, counters)
    before = store.counters()
    workers = EmbeddedWorkers(app, s) if embedded_workers else None
    if workers:
        workers.start()
    else:   # the fleet's workers do the work: say so at once when a queue has none
        watch_consumers(s, store)
    started = time.monotonic()
    stop = threading.Event()
    install_stop_signals(stop)
    watch(s, app, counters, stop, producer)
    bridge_stop, bridge = threading.Event(), None
    if s.sink == "nats":  # SINK=nats in one process: producer -> JetStream -> this bridge -> workers
        bridge = Bridge(s, counters).start_thread(bridge_stop)
    try:
        if source:
            replay_file(producer, source)
            try:
                delta = wait_until_done(store, before, lambda: enqueued(counters), stall_timeout, stop)
            except TimeoutError as exc:
                log.error("%s", exc)
                return 1
            summary = _summary(counters.snapshot(), delta, time.monotonic() - started)
            if summary["failed"]:
                log.error("%d of %d domains failed after their retries: `scout failed list` shows why, "
                          "`scout failed retry --all` sends them again", summary["failed"], summary["unique"])
            print(json.dumps(summary, sort_keys=True))
            return 0
        run_live(s, producer, counters, stop)
        if workers:
            drain(store, before, counters)
        return 0
    finally:
        if bridge is not None:
            bridge_stop.set()
            bridge.join(15)
        if workers:
            workers.stop()


def _summary(c: dict, delta: dict, seconds: float) -> dict:
    """`scout run --source`'s JSON line."""
    return {
        "frames": c.get("frames", 0), "domains_seen": c.get("names", 0),
        "unique": c.get("unique", 0), "saved": delta.get("domains_saved", 0),
        "failed": delta.get("domains_failed", 0),
        "whois_lookups": delta.get("whois_dispatched", 0),
        "skipped": {k: v for k, v in c.items() if "skipped" in k or k.startswith("frames_")},
        "seconds": round(seconds, 3),
    }


def cmd_produce(args) -> int:
    s = settings_from(args)
    if not s.broker_url and s.sink == "celery":
        raise ConfigError("BROKER_URL: `scout produce` needs a broker shared with the workers "
                          "(e.g. redis://127.0.0.1:6379/0); `scout run` works without one")
    app = configure(s)
    counters = Counters()
    producer, store = build_producer(s, counters)
    if s.sink == "celery":
        watch_consumers(s, store)
    stop = threading.Event()
    install_stop_signals(stop)
    watch(s, app, counters, stop, producer)
    if args.source:
        replay_file(producer, args.source)
    else:
        run_live(s, producer, counters, stop)
    print(json.dumps(counters.snapshot(), sort_keys=True))
    return 0


def watch(s: Settings, app, counters: Counters, stop: threading.Event, producer) -> None:
    """METRICS_PORT: serve /metrics (with the CT logs' status once the live source runs); CANARY_INTERVAL:
    send a canary that often (until `stop`)."""
    if s.canary_interval and s.broker_url and not s.redis_url:
        raise ConfigError("CANARY_INTERVAL: the workers report canaries through the shared store; set REDIS_URL")
    loop = CanaryLoop(s, get_store(), s.canary_interval) if s.canary_interval else None
    serve_pipeline_metrics(s, app, counters, ct_status=lambda: producer.ct_status() if producer.ct_status else [],
                           canary_state=loop.state if loop else None)
    if loop is not None:
        loop.start(stop)

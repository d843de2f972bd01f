"""`scout stats`: queue depths with their consumers (from the workers' leases) and the age of their
oldest message, counters, cache hit rates, WHOIS queries per server, the ledger, and with SINK=nats the
JetStream stream. `watch_consumers`: `scout run`'s warning when a queue it needs has no worker."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

from scout.celery import configure
from scout.producer.bridge import DURABLE
from scout.producer.producer import CT_STATUS_KEY, CT_STATUS_PRODUCERS
from scout.producer.sinks import queue_lengths
from scout.queues import PRIORITY_LEVELS
from scout.ops.canary import format_canary, last_canary
from scout.store import get_store

log = logging.getLogger(__name__)


def collect_stats(settings) -> dict:
    store = get_store()
    counters = store.counters()
    stats: dict = {"counters": counters, "failed_tasks": store.count_failed()[0]}
    in_flight, overdue = store.in_flight(time.time())
    stats["in_flight"] = {"domains": in_flight, "overdue": overdue}
    stats["canary"] = last_canary(store)
    if settings.broker_url:
        app = configure(settings)
        names = ["dns", "whois", "save"] + settings.whois_queues
        try:
            stats["queues"] = queue_lengths(app, names)
            stats["oldest_message_age"] = oldest_ages(settings, names)
        except Exception as exc:
            stats["queues_error"] = str(exc)
        stats["consumers"] = consumers_per_queue(store, names)

    if settings.sink == "nats":
        try:
            stats["nats"] = nats_depths(settings)
        except Exception as exc:
            stats["nats_error"] = f"{type(exc).__name__}: {exc}"

    def rate(hit, miss):
        total = counters.get(hit, 0) + counters.get(miss, 0)
        return round(counters.get(hit, 0) / total, 4) if total else None

    stats["cache_hit_rate"] = {
        "domain_whois": rate("whois_domain_cache_hit", "whois_domain_cache_miss"),
        "ip_whois": rate("whois_ip_cache_hit", "whois_ip_cache_miss"),
    }
    stats["producer"] = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("producer:")}
    tasks: dict = {}
    for k, v in counters.items():
        kind, _, stage = k.partition(":")
        if stage and kind in ("tasks_done", "tasks_failed", "tasks_retried"):
            tasks.setdefault(stage, {"done": 0, "failed": 0, "retried": 0})[kind[len("tasks_"):]] = v
    stats["tasks"] = tasks
    stats["whois_queries_per_server"] = {k.split(":", 1)[1]: v for k, v in counters.items()
                                         if k.startswith("whois_server:")}
    ids = store.get_members(CT_STATUS_PRODUCERS)
    stats["ct_logs"], stats["ct_logs_updated_at"] = merge_ct_status(
        store.get_many_json([f"{CT_STATUS_KEY}:{i}" for i in ids]) if ids else [])
    stats["gaps"] = [dict(g, log=lg.get("name")) for lg in stats["ct_logs"] for g in lg.get("gaps") or []]
    return stats


def merge_ct_status(docs: list) -> tuple[list[dict], float | None]:
    """The producers' CT status documents -> (one entry per log, the newest view of it winning and naming its
    producer; when the newest view was taken). Expired documents come as None and are left out."""
    docs = sorted((d for d in docs if isinstance(d, dict)), key=lambda d: d.get("updated_at") or 0)
    by_log: dict[str, dict] = {}
    for d in docs:
        for lg in d.get("logs") or []:
            by_log[lg.get("url") or lg.get("name")] = dict(lg, producer=d.get("producer"))
    return list(by_log.values()), (docs[-1].get("updated_at") if docs else None)


def consumers_per_queue(store, names) -> dict[str, int]:
    """Live workers consuming each queue, from their leases (scout.ops.watchdog): a worker that died
    or lost Redis drops out within WORKER_LEASE."""
    counts = {q: 0 for q in names}
    for info in store.leases().values():
        for q in info.get("queues") or []:
            if q in counts:
                counts[q] += 1
    return counts


def watch_consumers(s, store, first: float = 3.0, every: float = 30.0) -> threading.Thread:
    """A thread that warns, `first` s after the start and every `every` s after that, about the queues
    the run depends on that no live worker consumes (from the workers' leases)."""
    def run():
        time.sleep(first)
        missing_before: list[str] = []
        while True:
            try:
                counts = consumers_per_queue(store, ["dns", "whois", "save"] + s.whois_queues)
            except Exception as exc:  # the store is away: the producer says so too
                log.debug("could not read worker leases: %s", exc)
                counts = {}
            missing = [q for q, n in counts.items() if n == 0]
            if missing:
                log.warning("no worker consumes queue %s: this run waits until one does (start `scout worker "
                            "STAGE` for each, or `scout run --workers` to run them in this process)",
                            ", ".join(missing))
            elif missing_before:
                log.info("every queue has a worker again")
            missing_before = missing
            time.sleep(every)

    t = threading.Thread(target=run, name="consumer-watch", daemon=True)
    t.start()
    return t


def oldest_ages(settings, names, now: float | None = None) -> dict[str, float | None]:
    """Seconds since the oldest waiting message of each queue was published (its `scout_published`
    header); None when empty, or when the broker cannot show a message without taking it (RabbitMQ)."""
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return {q: None for q in names}
    import redis

    now = time.time() if now is None else now
    r = redis.Redis.from_url(settings.broker_url, socket_timeout=5, socket_connect_timeout=5)
    out: dict[str, float | None] = {}
    try:
        for q in names:
            # kombu's Redis transport: one list per priority (`q`, `q:1` .. `q:9`); LPUSH in, BRPOP out.
            keys = [q] + [f"{q}:{p}" for p in range(1, PRIORITY_LEVELS)]
            pipe = r.pipeline(transaction=False)
            for k in keys:
                pipe.lindex(k, -1)
            stamps = [_published(raw) for raw in pipe.execute() if raw]
            stamps = [t for t in stamps if t is not None]
            out[q] = round(now - min(stamps), 1) if stamps else None
    finally:
        r.close()
    return out


def _published(raw: bytes) -> float | None:
    try:
        value = json.loads(raw).get("headers", {}).get("scout_published")
        return float(value) if value is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


def nats_depths(settings, timeout: float = 3.0) -> dict:
    """Messages in the JetStream stream and what the bridges' durable consumer has still to deliver."""
    import nats  # deferred: only with SINK=nats

    async def read():
        nc = await nats.connect(settings.nats_url, connect_timeout=timeout, max_reconnect_attempts=0,
                                allow_reconnect=False)
        try:
            js = nc.jetstream(timeout=timeout)
            info = await js.stream_info(settings.nats_stream)
            out = {"stream": settings.nats_stream, "messages": info.state.messages, "bytes": info.state.bytes}
            try:
                ci = await js.consumer_info(settings.nats_stream, DURABLE)
                out.update(bridge_pending=ci.num_pending, bridge_ack_pending=ci.num_ack_pending)
            except Exception:  # no bridge has run yet
                out.update(bridge_pending=None, bridge_ack_pending=None)
            return out
        finally:
            await nc.close()

    return asyncio.run(asyncio.wait_for(read(), timeout * 3))


def format_stats(stats: dict) -> str:
    lines = []
    if stats.get("canary"):
        lines.append(format_canary(stats["canary"]))
    if "queues" in stats:
        lines.append("queues:   " + "  ".join(f"{q}={n}" for q, n in stats["queues"].items()))
        ages, consumers = stats.get("oldest_message_age") or {}, stats.get("consumers") or {}
        lines.append("          " + "  ".join(
            f"{q}: consumers={consumers.get(q, 0)} oldest={_age(ages.get(q))}" for q in stats["queues"]))
    if "nats" in stats:
        lines.append("nats:     " + "  ".join(f"{k}={v}" for k, v in stats["nats"].items()))
    c = stats["counters"]
    lines.append(f"saved:    {c.get('domains_saved', 0)} domains ({c.get('saved_new', 0)} new, "
                 f"{c.get('saved_updated', 0)} updated), failed tasks waiting: {stats['failed_tasks']}")
    lines.append(f"ledger:   in flight={stats['in_flight']['domains']} domains (enqueued, not yet saved or failed), "
                 f"overdue={stats['in_flight']['overdue']}, re-sent so far={c.get('ledger_resent', 0)}")
    lines.append(f"whois:    dispatched={c.get('whois_dispatched', 0)} landed={c.get('whois_landed', 0)} "
                 f"domain queries={c.get('whois_domain_queries', 0)} ip queries={c.get('whois_ip_queries', 0)} "
                 f"rate-limited={c.get('whois_rate_limited', 0)} "
                 f"refused targets={c.get('whois_target_refused', 0)}")
    hr = stats["cache_hit_rate"]
    lines.append(f"caches:   domain whois hit rate={hr['domain_whois']}  ip whois hit rate={hr['ip_whois']}")
    if stats.get("tasks"):
        lines.append("tasks:    " + "  ".join(
            f"{stage} done={t['done']} failed={t['failed']} retried={t['retried']}"
            for stage, t in sorted(stats["tasks"].items())))
    if stats["producer"]:
        lines.append("producer: " + "  ".join(f"{k}={v}" for k, v in sorted(stats["producer"].items())))
    if stats["whois_queries_per_server"]:
        lines.append("servers:  " + "  ".join(f"{k}={v}" for k, v in sorted(stats["whois_queries_per_server"].items())))
    lines.extend(format_ct_logs(stats))
    other = {k: v for k, v in c.items()
             if not k.startswith(("producer:", "whois_server:", "tasks_done:", "tasks_failed:", "tasks_retried:"))}
    lines.append("counters: " + "  ".join(f"{k}={v}" for k, v in sorted(other.items())))
    return "\n".join(lines)


def _ago(t, now: float) -> str:
    return "never" if not t else f"{max(0.0, now - t):.0f}s ago"


def format_ct_logs(stats: dict) -> list[str]:
    """One line per CT log (lagging and stalled ones marked), then one per gap."""
    logs = stats.get("ct_logs") or []
    if not logs:
        return []
    now = time.time()
    out = [f"ct logs:  {len(logs)} followed, status of {_ago(stats.get('ct_logs_updated_at'), now)}; "
           f"{sum(1 for lg in logs if lg.get('lagging'))} lagging, {sum(1 for lg in logs if lg.get('stalled'))} "
           f"stalled, {len(stats.get('gaps') or [])} gaps"]
    for lg in logs:
        backoff = f" backoff {lg['backoff_until'] - now:.0f}s" if lg.get("backoff_until") else ""
        marks = ("LAG " if lg.get("lagging") else "") + ("STALLED " if lg.get("stalled") else "")
        head = f" head grew {lg['head_age_seconds']:.0f}s ago" if lg.get("head_age_seconds") is not None else ""
        out.append(f"  {marks}{lg.get('name')} [{lg.get('kind')}] "
                   f"position={lg.get('position')} tree_size={lg.get('tree_size')} behind={lg.get('behind')} "
                   f"lag={lg.get('lag_seconds')}s last_success={_ago(lg.get('last_success'), now)} "
                   f"errors={lg.get('errors')}{backoff}{head}")
    for g in stats.get("gaps") or []:
        out.append(f"  gap: {g.get('log')} entries {g.get('start')}..{g.get('end', 1) - 1} "
                   f"({g.get('entries')}) skipped: {g.get('reason')}")
    return out


def _age(seconds) -> str:
    return "-" if seconds is None else f"{seconds:.0f}s"

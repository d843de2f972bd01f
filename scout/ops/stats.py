"""`scout stats`: queue depths, counters, cache hit rates, WHOIS queries per server, the ledger, and
with SINK=nats the JetStream stream."""
from __future__ import annotations

import asyncio
import time

from scout.celery import configure
from scout.producer.bridge import DURABLE
from scout.producer.sinks import queue_lengths
from scout.store import get_store


def collect_stats(settings) -> dict:
    store = get_store()
    counters = store.counters()
    stats: dict = {"counters": counters, "failed_tasks": store.count_failed()[0]}
    in_flight, overdue = store.in_flight(time.time())
    stats["in_flight"] = {"domains": in_flight, "overdue": overdue}
    if settings.broker_url:
        app = configure(settings)
        try:
            stats["queues"] = queue_lengths(app, ["dns", "whois", "save"] + settings.whois_queues)
        except Exception as exc:
            stats["queues_error"] = str(exc)

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
    return stats


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
    if "queues" in stats:
        lines.append("queues:   " + "  ".join(f"{q}={n}" for q, n in stats["queues"].items()))
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
    other = {k: v for k, v in c.items()
             if not k.startswith(("producer:", "whois_server:", "tasks_done:", "tasks_failed:", "tasks_retried:"))}
    lines.append("counters: " + "  ".join(f"{k}={v}" for k, v in sorted(other.items())))
    return "\n".join(lines)

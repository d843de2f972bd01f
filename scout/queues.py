"""Queue names, routing and broker options: which task runs where.

Queues: `dns`, `whois` (the chain's cheap WHOIS step: cache joins and scheduling), one WHOIS lookup
queue per source address (`whois.<ip>`, or `whois.default` when WHOIS_IPS is empty) holding the
rate-limited lookups, and `save`.
"""
from __future__ import annotations

import zlib

from kombu import Queue

DNS, WHOIS, SAVE = "dns", "whois", "save"
PRIORITY_LEVELS = 10  # 0 (most urgent) .. 9


def task_routes() -> dict:
    return {
        "scout.dns": {"queue": DNS},
        "scout.whois": {"queue": WHOIS},
        "scout.domain_whois": {"queue": WHOIS},   # steps of the former chain, still queued after an upgrade
        "scout.ip_whois": {"queue": WHOIS},
        "scout.save": {"queue": SAVE},
        "scout.apply_whois": {"queue": SAVE},
        # scout.lookup_* are routed at send time to the queue of the source address they use.
    }


def task_queues(settings) -> list[Queue]:
    args = {"x-max-priority": PRIORITY_LEVELS} if _is_amqp(settings) else None
    queues = [Queue(q, routing_key=q) for q in (DNS, WHOIS, SAVE)]
    queues += [Queue(q, routing_key=q, queue_arguments=args) for q in settings.whois_queues]
    return queues


def transport_options(settings) -> dict:
    # Redis only: a message taken by a worker that died without acking comes back after the visibility
    # timeout (VISIBILITY_TIMEOUT). It must exceed the longest task plus the longest countdown/ETA, or a
    # message still waiting in a live worker is delivered a second time (harmless: tasks are idempotent).
    vt = float(settings.visibility_timeout)
    opts: dict = {"visibility_timeout": vt,
                  # kombu sweeps for expired unacked messages every interval x throttle (100 s by default):
                  # a short timeout needs a faster sweep.
                  "unacked_restore_interval": max(1, min(10, int(vt // 10))),
                  "unacked_restore_throttle": 1 if vt < 1000 else 10}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        opts.update({"priority_steps": list(range(PRIORITY_LEVELS)), "sep": ":",
                     "queue_order_strategy": "priority"})
    if not settings.broker_url:
        opts["polling_interval"] = 0.05  # the in-memory broker polls; the default is 1 s
    return opts


def _is_amqp(settings) -> bool:
    return settings.broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))


def lookup_route(settings, root_domain: str) -> tuple[str, str | None]:
    """(queue, source address) for a root's WHOIS: a stable hash, so one root always uses one address."""
    if not settings.whois_ips:
        return "whois.default", None
    ip = settings.whois_ips[zlib.crc32(root_domain.encode()) % len(settings.whois_ips)]
    return f"whois.{ip}", ip


def broker_priority(settings, urgency: int) -> int:
    """urgency 0 (most urgent) .. 9 -> the broker's number: Redis serves 0 first, RabbitMQ serves 9 first."""
    urgency = max(0, min(PRIORITY_LEVELS - 1, urgency))
    return PRIORITY_LEVELS - 1 - urgency if _is_amqp(settings) else urgency

"""Queue names, routing and broker options: which task runs where.

Queues: `dns`, `whois` (the chain's cheap WHOIS step: cache joins and scheduling), one WHOIS lookup
queue per source address (`whois.<ip>`, or `whois.default` when WHOIS_IPS is empty) holding the
rate-limited lookups, and `save` (which also carries `scout.apply_whois`, a landed lookup's update).

`QueueDepths` reads how many messages wait in every queue of the chain: the producer's and the bridge's
backpressure, the ledger sweeper and the WHOIS stage's lookup bound all judge the backlog by it.
"""
from __future__ import annotations

import time
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


def chain_queues(settings) -> list[str]:
    """Every queue a domain may wait in: dns, whois, save (with apply_whois) and the lookup queues."""
    return [DNS, WHOIS, SAVE] + list(settings.whois_queues)


def queue_lengths(app, names) -> dict[str, int]:
    """Messages waiting in each queue (Redis: summed over the priority lists; RabbitMQ; the in-memory
    broker). A queue that does not exist yet counts 0."""
    out = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for name in names:
            try:
                out[name] = channel.queue_declare(queue=name, passive=True).message_count
            except Exception:
                out[name] = 0
                # RabbitMQ closes the channel on a passive declare of a missing queue: a new one.
                channel = conn.channel()
    return out


class QueueDepths:
    """What waits in the broker, read at most once every `every` seconds (one round trip per queue).

    `domains()` is the chain's backlog in domains: a dns/whois/save message is a batch (counted as
    BATCH_SIZE domains; an apply_whois message on `save` counts as much, which errs on the safe side),
    a lookup message stands for at least one waiting domain. `lookups()` is what the WHOIS lookup queues
    hold. Both come from the broker itself, so a purge or a lost message cannot leave them high.
    Messages a worker has taken (prefetched, or held for a retry countdown) are not counted."""

    def __init__(self, app, settings, every: float = 0.5, names: list[str] | None = None):
        self.app = app
        self.s = settings
        self.names = names or chain_queues(settings)   # the queues read (default: all of the chain's)
        self.every = every
        self._read_at = -1e9
        self.last: dict[str, int] = {}

    def read(self, fresh: bool = False) -> dict[str, int]:
        now = time.monotonic()
        if fresh or now - self._read_at >= self.every:
            self.last = queue_lengths(self.app, self.names)
            self._read_at = now
        return dict(self.last)

    def domains(self, fresh: bool = False) -> int:
        depths = self.read(fresh)
        return (sum(depths.get(q, 0) for q in (DNS, WHOIS, SAVE)) * self.s.batch_size
                + sum(depths.get(q, 0) for q in self.s.whois_queues))

    def lookups(self, fresh: bool = False) -> int:
        depths = self.read(fresh)
        return sum(depths.get(q, 0) for q in self.s.whois_queues)

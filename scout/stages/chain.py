"""The chain a micro-batch of domains travels, dns -> whois -> save, and its publication.

An item is one domain travelling through the chain, a small JSON object:
  d: domain, r: root domain, g: registered domain (set by the whois step), seen: time of the sighting
  (epoch s), c: certificate facts (optional),
  score / matches / urgency: watchlist result (optional), dns: the DNS stage's records,
  dw: domain WHOIS {raw, parsed}, iw: {ip: {raw, info}}, b: the in-flight ledger batch it was published in.

The chain is built from task names (`app.signature("scout.dns")`), so whoever publishes one (producer,
NATS bridge, a DNS retry, `scout failed retry`) never imports the tasks: the tasks import the stages,
never the other way round. Every chain is written to the in-flight ledger before it is published and
leaves it when its domains are saved or recorded as failed (`settle`); scout/producer/ledger.py sends
again what stays there too long.
"""
from __future__ import annotations

import time
import uuid

from celery import chain as celery_chain

from scout.celery import app

STAGES = ("dns", "whois", "save")


def build_chain(items: list[dict], start: str = "dns", attempt: int = 0):
    """The Celery chain from `start` to save, carrying `items`."""
    names = STAGES[STAGES.index(start):]
    first_kwargs = {"attempt": attempt} if names[0] == "dns" else {}
    sigs = [app.signature(f"scout.{names[0]}", args=(items,), kwargs=first_kwargs)]
    sigs += [app.signature(f"scout.{name}") for name in names[1:]]
    # A short argument summary for Flower and events: Celery's own repr of a 50-domain batch costs a
    # third of the time of publishing it.
    shown = ", ".join(it["d"] for it in items[:3]) + (", ..." if len(items) > 3 else "")
    argsrepr = f"[{len(items)} domains: {shown}]"
    return celery_chain(*(sig.set(argsrepr=argsrepr) for sig in sigs))


def rest_of_chain(stage: str) -> list[str]:
    return list(STAGES[STAGES.index(stage) + 1:]) if stage in STAGES else []


def retry_countdown(attempt: int, base: float = 5.0, cap: float = 300.0) -> float:
    return min(cap, base * (2 ** attempt))


def publish_chain(items: list[dict], settings, store, start: str = "dns", attempt: int = 0, **apply_opts):
    """Write `items` into the ledger as one batch, then publish their chain from `start`. Raises what
    publishing raises (the batch stays in the ledger: the caller keeps it to publish again, or the
    sweeper does). Each item carries its batch id ("b") to the stage that settles it. Items re-sent
    whole from an earlier batch (a DNS retry, a sweep, a failed-task retry) settle that batch once
    they are published anew. LEDGER_TIMEOUT=0s: no ledger, the chain is only published."""
    earlier = batches_of(items)
    if settings.ledger_timeout > 0:
        batch = f"{uuid.uuid4().hex[:12]}.{len(items)}"   # the suffix lets `scout stats` count domains
        for it in items:
            it["b"] = batch
        store.track(batch, items, time.time() + settings.ledger_timeout)
    build_chain(items, start, attempt).apply_async(**apply_opts)
    store.settle(earlier)


def batches_of(items: list) -> list[str]:
    return sorted({it["b"] for it in items if isinstance(it, dict) and isinstance(it.get("b"), str)})


def settle(store, items: list[dict]) -> None:
    """These items ended (saved, or in the failed store): their batches leave the ledger. Items published
    with the ledger off carry no batch id: nothing to do, no round trip."""
    store.settle(batches_of(items))

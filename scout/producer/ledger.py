"""The in-flight ledger: every domain published into a chain is written down until it is saved or
recorded as failed; a sweeper sends again what is overdue.

Why: the broker is not always enough. kombu's Redis transport pops a message (BRPOP) and only then
notes it as unacknowledged; a Redis killed between the two loses the message for good (its restore on
connection loss runs while Redis is still down). With the ledger, such a domain is published again
LEDGER_TIMEOUT after it was enqueued. Saving is idempotent, so a domain sent twice is saved once.

One entry per published batch (its items as JSON, ~130 bytes per domain in Redis), one Redis round trip
per batch at publish and one at save (LEDGER_TIMEOUT=0s turns it off).
Embedded mode (in-memory store) keeps no ledger: its broker lives in the process that would lose it.

Writing a batch in and settling it out happen where chains are published and end
(scout.stages.chain.publish_chain / settle); this module sends again what is overdue.
"""
from __future__ import annotations

import logging
import time

from scout.stages.chain import publish_chain

log = logging.getLogger(__name__)

SWEEP_LOCK = "ledger-sweep"
SWEEP_BATCHES = 20          # at most this many batches re-sent per sweep: a wrong timeout cannot flood


def sweep(settings, store, now: float | None = None, max_batches: int = SWEEP_BATCHES) -> int:
    """Publish again every overdue domain (up to `max_batches` batches). -> domains re-sent."""
    if settings.ledger_timeout <= 0:
        return 0
    sent = 0
    for _batch, items in store.overdue(time.time() if now is None else now, max_batches):
        for it in items:  # start over from DNS with the items as they were first published
            for key in ("dns", "dw", "iw"):
                it.pop(key, None)
        publish_chain(items, settings, store)   # a new batch, due again after LEDGER_TIMEOUT; this one settled
        sent += len(items)
    if sent:
        store.incr({"ledger_resent": sent})
        log.warning("re-sent %d domains neither saved nor failed %.0f s after they were enqueued "
                    "(a message lost by the broker, or a backlog longer than LEDGER_TIMEOUT)",
                    sent, settings.ledger_timeout)
    return sent


def resend_dead_holds(settings, store) -> int:
    """Publish again, from DNS, every batch a task of a dead worker was running (its lease expired:
    SIGKILL, OOM, a host gone). Waiting for the broker would take VISIBILITY_TIMEOUT (2 h) on Redis or
    LEDGER_TIMEOUT (1 h); this takes WORKER_LEASE plus one check. The broker's own redelivery stays the
    second line: saves are idempotent, a batch that comes back twice is saved once. -> domains re-sent."""
    sent = 0
    for batch, worker in sorted(store.dead_holds().items()):
        if not store.take_hold(batch, worker):   # another process took it first
            continue
        items = store.ledger_items(batch)
        if items is None:                        # saved or failed meanwhile: nothing to send
            continue
        for it in items:
            for key in ("dns", "dw", "iw"):
                it.pop(key, None)
        try:
            publish_chain(items, settings, store)    # a new batch; this one is settled
        except Exception:
            store.hold([batch], worker)          # still the dead worker's: the next check tries again
            raise
        sent += len(items)
    if sent:
        store.incr({"lease_resent": sent})
        log.warning("re-sent %d domains of batches a dead worker was running (its lease expired)", sent)
    return sent


def sweep_older_than(settings, store, older: float) -> int:
    """`scout sweep`: send again every domain enqueued more than `older` seconds ago and neither saved nor
    failed, a bounded number of batches at a time. -> domains re-sent."""
    total = 0
    cutoff = time.time() + settings.ledger_timeout - older   # fixed: what is re-sent now is due again later
    while True:
        sent = sweep(settings, store, now=cutoff)
        total += sent
        if sent == 0:
            return total


class Sweeper:
    """Calls `sweep` now and then from a long-running process (producer, bridge). One process of a fleet
    sweeps at a time (a store lock held for one interval). With a `backlog` (scout.producer.backlog), no
    sweep runs while the chain's queues hold MAX_BACKLOG domains or more: what is overdue then is most
    likely waiting in that backlog, and re-sending it would only make the backlog longer."""

    def __init__(self, settings, store, backlog=None):
        self.s = settings
        self.store = store
        self.backlog = backlog
        self.every = min(60.0, max(1.0, settings.ledger_timeout / 4))
        self._next = time.monotonic() + self.every
        self._next_lease_check = time.monotonic()

    def due(self) -> bool:
        """A sweep or a dead-lease check is due."""
        now = time.monotonic()
        return self.s.ledger_timeout > 0 and (now >= self._next or now >= self._next_lease_check)

    def maybe_sweep(self) -> int:
        sent = self._dead_leases()
        if not (self.s.ledger_timeout > 0 and time.monotonic() >= self._next):
            return sent
        self._next = time.monotonic() + self.every
        try:
            if self.backlog is not None and self.backlog.over():
                self.store.incr({"ledger_sweeps_paused": 1})
                log.info("ledger sweep paused: %d domains wait in the queues (MAX_BACKLOG=%d)",
                         self.backlog.value, self.s.max_backlog)
                return 0
            if not self.store.acquire(SWEEP_LOCK, self.every * 0.9):
                return 0
            return sent + sweep(self.s, self.store)
        except Exception as exc:  # broker or store away: the next sweep tries again
            log.warning("ledger sweep failed (%s); retrying in %.0f s", exc, self.every)
            return sent

    def _dead_leases(self) -> int:
        """Every third of WORKER_LEASE: re-send what dead workers held (workers check it too)."""
        if self.s.ledger_timeout <= 0 or time.monotonic() < self._next_lease_check:
            return 0
        self._next_lease_check = time.monotonic() + max(1.0, self.s.worker_lease / 3)
        try:
            return resend_dead_holds(self.s, self.store)
        except Exception as exc:  # broker or store away: the next check tries again
            log.warning("dead-lease check failed (%s)", exc)
            return 0

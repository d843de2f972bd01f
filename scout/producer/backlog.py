"""The broker's backlog, as the producer, the NATS bridge and the ledger sweeper see it.

One `Backlog` per process reads every queue of the chain (scout.queues.QueueDepths: dns, whois, save
with apply_whois, and the WHOIS lookup queues) at most every `every` seconds, adds what the process holds
itself (the sink's retry buffer), and says whether that is over MAX_BACKLOG. Over it, the producer drops
new names (unmarked, so CT brings them back), the bridge leaves them in JetStream and the ledger does
not re-send into the queue. A broker that cannot be read counts as nothing queued: the publish itself
then fails and the sink's bounded retry buffer takes over.
"""
from __future__ import annotations

import logging
import time

from scout.queues import QueueDepths

log = logging.getLogger(__name__)

LOG_EVERY = 60.0   # seconds between two "backlog over MAX_BACKLOG" warnings of one process


class Backlog:
    def __init__(self, settings, app=None, every: float = 0.5, held=lambda: 0, who: str = "producer"):
        if app is None:
            from scout.celery import app
        self.s = settings
        self.depths = QueueDepths(app, settings, every)
        self.held = held               # domains the process itself still has to publish
        self.who = who
        self.value = 0
        self._last_log = -1e9

    def domains(self) -> int:
        try:
            queued = self.depths.domains()
        except Exception as exc:  # broker away: judged by what we hold
            log.debug("cannot read queue depths: %s", exc)
            queued = 0
        self.value = queued + self.held()
        return self.value

    def over(self) -> bool:
        over = self.domains() >= self.s.max_backlog
        now = time.monotonic()
        if over and now - self._last_log >= LOG_EVERY:
            self._last_log = now
            log.warning("%s: backlog of %d domains in the chain's queues is above MAX_BACKLOG=%d; pausing until "
                        "workers catch up (queues: %s)", self.who, self.value, self.s.max_backlog,
                        " ".join(f"{q}={n}" for q, n in self.depths.last.items()))
        return over

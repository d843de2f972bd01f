"""Inside every worker process (Celery loads it with the tasks: scout.celery's `include`): the worker's
lease, the batches it holds, dead workers' batches, and stall detection.

- Lease: a key `scout:lease:<worker id>` renewed every WORKER_LEASE/3 and expiring after WORKER_LEASE,
  carrying the queues the worker consumes (`scout stats` counts consumers from them, `scout run` warns
  when a queue it needs has none).
- Holds: while a chain task (dns, whois, save) runs, its batch is held under the worker's id; it is let
  go when the task ended and its next step was published (a retry keeps it: the retry waits in this
  worker). A batch whose holder's lease expired is re-sent from the ledger by any live worker or producer
  (scout.producer.ledger.resend_dead_holds): a SIGKILLed worker's domains are saved within minutes,
  not after VISIBILITY_TIMEOUT.
- Stall: a worker whose queue has messages but that started and finished no task for
  WORKER_STALL_TIMEOUT is stuck (Celery/kombu can stop consuming after a Redis restart while the process
  lives). Under `scout worker` (its supervisor sets SCOUT_SUPERVISED) it exits 75 and is restarted;
  elsewhere it says so in the log every time it checks.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from celery.signals import task_postrun, task_prerun, worker_init, worker_shutdown

from scout.config import get_settings
from scout.ops.malloc import limit_arenas
from scout.ops.supervisor import STALL_EXIT, SUPERVISED_ENV
from scout.producer.ledger import resend_dead_holds
from scout.producer.sinks import queue_lengths
from scout.stages.chain import batches_of
from scout.store import get_store

log = logging.getLogger(__name__)

CHAIN_TASKS = ("scout.dns", "scout.whois", "scout.save", "scout.domain_whois", "scout.ip_whois")
LEASE_CHECK_LOCK = "lease-check"


class Watchdog:
    """One per worker process (embedded workers of `scout run` share it)."""

    def __init__(self, settings, store, app, supervised: bool, exit_fn=os._exit):
        self.s = settings
        self.store = store
        self.app = app
        self.supervised = supervised
        self.exit_fn = exit_fn
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.queues: set[str] = set()
        self.started_at = time.time()
        self.last_activity = time.monotonic()    # a task started or ended
        self.running = 0
        self._lock = threading.Lock()
        self._batches: dict[str, list[str]] = {}     # task id -> batches it held when it started
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- tasks
    def task_started(self, name: str, args, task_id: str = "") -> None:
        with self._lock:
            self.last_activity = time.monotonic()
            self.running += 1
        if name in CHAIN_TASKS and args:
            batches = batches_of(args[0] or [])
            with self._lock:
                self._batches[task_id] = batches
            _quietly(self.store.hold, batches, self.id)

    def task_ended(self, name: str, args, state: str | None, task_id: str = "") -> None:
        with self._lock:
            self.last_activity = time.monotonic()
            self.running = max(0, self.running - 1)
            before = self._batches.pop(task_id, None)
        if name not in CHAIN_TASKS or not args:
            return
        now = batches_of(args[0] or [])
        if before is None:
            before = now
        if state != "RETRY":
            _quietly(self.store.unhold, before, self.id)
        # The DNS step re-publishes the domains no server answered as a new batch with a countdown; the
        # message waits in this worker (an ETA): hold it like a retry.
        again = sorted(set(now) - set(before))
        if again:
            _quietly(self.store.hold, again, self.id)

    # -- the beat
    def start(self, queues) -> None:
        self.queues.update(queues)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="scout-watchdog", daemon=True)
            self._thread.start()
            self.beat()     # at once: a task may start before the first period ends

    def stop(self) -> None:
        self._stop.set()
        _quietly(self.store.drop_lease, self.id)

    def _run(self) -> None:
        every = max(1.0, self.s.worker_lease / 3)
        while not self._stop.wait(every):
            try:
                self.beat()
                self.resend_dead()
                self.check_stall()
            except Exception as exc:  # Redis away: the next beat tries again (the lease may lapse)
                log.warning("worker watchdog: %s: %s", type(exc).__name__, exc)

    def beat(self) -> None:
        info = {"queues": sorted(self.queues), "host": socket.gethostname(), "pid": os.getpid(),
                "started": self.started_at, "running": self.running, "beat": time.time()}
        self.store.renew_lease(self.id, info, self.s.worker_lease)

    def resend_dead(self) -> int:
        if self.s.ledger_timeout <= 0:
            return 0
        if not self.store.acquire(LEASE_CHECK_LOCK, max(1.0, self.s.worker_lease / 3) * 0.9):
            return 0
        return resend_dead_holds(self.s, self.store)

    def check_stall(self) -> bool:
        """True when stalled (and, supervised, the process exits)."""
        idle = time.monotonic() - self.last_activity
        if idle < self.s.worker_stall_timeout or not self.queues:
            return False
        waiting = {q: n for q, n in queue_lengths(self.app, sorted(self.queues)).items() if n}
        if not waiting:
            return False
        log.error("worker stalled: no task started or ended for %.0f s while %s wait; %s", idle,
                  ", ".join(f"{q}={n}" for q, n in waiting.items()),
                  "restarting (exit 75)" if self.supervised else "restart it (`scout worker` does so itself)")
        if self.supervised:
            _quietly(self.store.drop_lease, self.id)   # its batches are re-sent at once
            for h in logging.getLogger().handlers:
                h.flush()
            self.exit_fn(STALL_EXIT)
        return True


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception as exc:  # bookkeeping must never fail a task; the ledger timeout still covers it
        log.debug("watchdog %s: %s", getattr(fn, "__name__", fn), exc)


_watchdog: Watchdog | None = None
_lock = threading.Lock()


def current() -> Watchdog | None:
    return _watchdog


@worker_init.connect
def _fewer_malloc_arenas(sender=None, **_):
    """Before the pool's threads start (scout.ops.malloc: why)."""
    limit_arenas()


@worker_init.connect
def _on_worker_init(sender=None, **_):
    global _watchdog
    try:
        queues = list(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    except Exception:  # noqa: BLE001
        queues = []
    with _lock:
        if _watchdog is None:
            _watchdog = Watchdog(get_settings(), get_store(), sender.app,
                                 supervised=os.environ.get(SUPERVISED_ENV) == "1")
    try:
        _watchdog.start(queues)
    except Exception as exc:  # Redis not up yet: the beat thread retries
        log.warning("worker lease not taken yet: %s", exc)


@worker_shutdown.connect
def _on_worker_shutdown(**_):
    if _watchdog is not None:
        _watchdog.stop()


@task_prerun.connect
def _on_task_prerun(task_id=None, task=None, args=None, **_):
    if _watchdog is not None and task is not None:
        _watchdog.task_started(task.name, args, task_id or "")


@task_postrun.connect
def _on_task_postrun(task_id=None, task=None, args=None, state=None, **_):
    if _watchdog is not None and task is not None:
        _watchdog.task_ended(task.name, args, state, task_id or "")

"""Workers inside this process (`scout run`): one Celery worker per queue group, each in a thread, and
the wait until what the producer enqueued is done.

With BROKER_URL empty the broker is Celery's in-memory transport, which works across the threads of
one process; so `scout run` needs no Redis at all. The rate-limited WHOIS lookup queues get their own
worker each: Celery's rate_limit is per worker, so one worker per source address is one rate per address.
"""
from __future__ import annotations

import logging
import threading
import time

from celery.worker import WorkController
from celery.worker import state as worker_state

from scout.ops.malloc import limit_arenas

log = logging.getLogger(__name__)


class _Worker(WorkController):
    def __init__(self, *args, **kwargs):
        self.started = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer):
        self.started.set()

    def should_use_eventloop(self):
        # kombu keeps one event loop (Hub) per process (kombu.asynchronous.get_event_loop), and Celery's
        # Hub step reuses it: with a broker that has an event loop (Redis, RabbitMQ), the second and
        # later workers of this process would ride the first one's loop, and a rate-limited lookup
        # worker's timers stall (one lookup per minute at DOMAIN_WHOIS_RATE=1s). The blocking consumer
        # loop runs each worker in its own thread, as the in-memory broker always did.
        return False


class EmbeddedWorkers:
    def __init__(self, app, settings):
        self.app = app
        self.s = settings
        self.workers: list[tuple[_Worker, threading.Thread]] = []

    def _groups(self):
        s = self.s
        groups = [(["dns"], s.dns_workers), (["whois", "save"], max(4, min(32, s.dns_workers // 4)))]
        groups += [([q], min(s.whois_workers, 8)) for q in s.whois_queues]
        return groups

    def start(self, timeout: float = 30.0) -> None:
        limit_arenas()      # before the pools' threads start (scout.ops.malloc: why)
        self.app.finalize()
        self.app.set_current()
        self.app.set_default()
        for i, (queues, concurrency) in enumerate(self._groups()):
            w = _Worker(app=self.app, pool="threads", concurrency=concurrency, queues=queues,
                        hostname=f"embedded{i}-{'-'.join(queues)}@scout", loglevel=self.s.log_level,
                        without_heartbeat=True, without_mingle=True, without_gossip=True,
                        ready_callback=None)
            t = threading.Thread(target=w.start, name=f"worker-{'-'.join(queues)}", daemon=True)
            t.start()
            self.workers.append((w, t))
            # Each WorkController selects its queues on the shared app; the next one may only be
            # built once this one's consumer has bound to them.
            if not w.started.wait(timeout):
                raise RuntimeError("an embedded worker did not start in time")

    def stop(self, timeout: float = 30.0) -> None:
        worker_state.should_terminate = 0   # warm shutdown: running tasks finish
        for w, t in self.workers:
            t.join(timeout)
        worker_state.should_terminate = None
        self.workers.clear()


def enqueued(counters) -> int:
    """Domains the pipeline must finish: enqueued on the broker, or published to NATS (SINK=nats)."""
    return max(counters.get("enqueued"), counters.get("nats_published"))


def wait_until_done(store, before: dict, enqueued_fn, stall_timeout: float = 600.0,
                    stop: threading.Event | None = None) -> dict:
    """Until every enqueued domain is saved or failed and every WHOIS lookup started has landed; -> the
    store's counters gained since `before`. TimeoutError when nothing progressed for `stall_timeout` s
    or `stop` is set."""
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


def drain(store, before: dict, counters, timeout: float = 60.0) -> None:
    """Embedded broker: queued work lives in this process; finish it before exiting (bounded)."""
    try:
        wait_until_done(store, before, lambda: enqueued(counters), stall_timeout=timeout)
    except TimeoutError as exc:
        log.warning("stopping with work unfinished: %s", exc)


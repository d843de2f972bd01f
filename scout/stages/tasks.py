"""Celery tasks: thin wrappers over the stage functions of scout.stages. Routing is in scout.queues,
settings in celeryconfig.

Chain per micro-batch: dns -> whois -> save (scout.stages.chain builds it from these task names). The
chain's WHOIS step only joins caches and schedules the rate-limited lookups (lookup_domain_whois /
lookup_ip_whois, one queue per source address); a lookup that lands updates the saved documents through
apply_whois on the save queue.
"""
from __future__ import annotations

import logging
import threading
import time

from celery import Task
from celery.exceptions import Reject, Retry
from celery.signals import worker_init, worker_ready

from scout import metrics, queues
from scout.celery import app
from scout.config import get_settings
from scout.stages import canary
from scout.stages import dns as dns_stage
from scout.stages import save as save_stage
from scout.stages import whois as whois_stage
from scout.stages.alerts import get_alert_sink
from scout.stages.chain import publish_chain, retry_countdown
from scout.stages.failures import record_failure
from scout.store import get_store
from scout.watchlist import WatchlistError, WatchlistHolder
from scout.whois.bootstrap import refresh_bootstrap
from scout.whois.domain import lookup_domain
from scout.whois.errors import RateLimited
from scout.whois.ip import lookup_ip

log = logging.getLogger(__name__)


def _rate(interval: float) -> str | None:
    """Celery rate_limit string for a minimum interval between task starts (per worker)."""
    return f"{3600.0 / interval:.6g}/h" if interval > 0 else None


class StageTask(Task):
    """Retries unexpected errors with backoff; a task out of retries goes to the failed store."""

    autoretry_for = (Exception,)
    retry_backoff = max(1, int(get_settings().retry_base_delay))   # RETRY_BASE_DELAY (Celery wants whole seconds)
    retry_backoff_max = 600
    retry_jitter = True
    acks_late = True

    @property
    def max_retries(self):  # read at call time so TASK_MAX_RETRIES applies without re-import
        return get_settings().task_max_retries

    def retry(self, *args, **kwargs):
        """Celery drops a task whose retry it cannot publish (broker away: Reject(requeue=False)), which
        would lose its domains. Give the delivery back instead: requeued, or, while the broker is still
        away, left unacknowledged so it comes back after the visibility timeout."""
        try:
            return super().retry(*args, **kwargs)
        except Reject as exc:
            raise Reject(exc.reason, requeue=True) from exc

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return super().__call__(*args, **kwargs)
        finally:
            metrics.observe_stage(self.name.split(".", 1)[1], time.perf_counter() - started)

    def on_success(self, retval, task_id, args, kwargs):
        _count_task(self.name, "done")

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        _count_task(self.name, "retried")
        # One line per retry (Celery's own is at INFO, quieted): a stage failing over and over shows in
        # the log long before the task reaches the failed store.
        if not isinstance(exc, RateLimited):
            log.warning("%s failed (try %d of %d), retrying: %s: %s", self.name, self.request.retries + 1,
                        self.max_retries + 1, type(exc).__name__, exc)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        stage = self.name.split(".", 1)[1]
        try:
            record_failure(get_store(), task=self.name, stage=stage, args=list(args),
                                    kwargs=dict(kwargs), exc=exc, attempts=self.request.retries + 1,
                                    tb=str(einfo), queue=(self.request.delivery_info or {}).get("routing_key"))
            if stage.startswith("lookup_"):
                _lookup_gave_up(stage, args, exc)
            elif stage == "apply_whois":
                get_store().incr({"whois_landed": 1})   # gave up on it: no longer in flight
        except Exception:  # the failed store itself is down: say so loudly, Celery logs the task too
            log.exception("could not record failed task %s %s", self.name, task_id)


def _count_task(name: str, outcome: str) -> None:
    """Per-stage task counters for `scout stats` (tasks_done:<stage>, tasks_retried:<stage>)."""
    try:
        get_store().incr({f"tasks_{outcome}:{name.split('.', 1)[1]}": 1})
    except Exception:  # counting must never fail a task
        log.debug("could not count task %s", name, exc_info=True)


# ------------------------------------------------------------------ the chain

@app.task(name="scout.dns", base=StageTask, bind=True)
def dns(self, items, attempt=0):
    s = get_settings()
    canaries, items = canary.split(items)
    canary.answer_dns(canaries, get_store())
    if not items:
        return canaries
    done, transient = dns_stage.run_dns(items, s)
    if transient:
        if done or dns_stage.dns_server_answers(s):
            done += transient  # the server answers: these names just have no answer (kept as TIMEOUT)
        elif attempt < s.task_max_retries:
            # `done` is empty: the whole batch is re-sent as a new one (the failed store settles it too)
            countdown = retry_countdown(attempt, s.retry_base_delay)
            publish_chain(transient, s, get_store(), "dns", attempt + 1, countdown=countdown)
            get_store().incr({"dns_retries": len(transient)})
            log.warning("no DNS server answered for %d domains (try %d of %d); again in %.0f s",
                        len(transient), attempt + 1, s.task_max_retries + 1, countdown)
        else:
            record_failure(get_store(), task=self.name, stage="dns", args=[transient],
                                    exc="DNSUnavailable: no DNS server answered", attempts=attempt + 1,
                                    queue=queues.DNS)
    return done + canaries


def _dispatch_domain(settings):
    def send(root, urgency):
        queue, source_ip = queues.lookup_route(settings, root)
        lookup_domain_whois.apply_async((root, source_ip), queue=queue, routing_key=queue,
                                        priority=queues.broker_priority(settings, urgency))
    return send


def _dispatch_ip(settings):
    def send(ip, root, urgency):
        queue, source_ip = queues.lookup_route(settings, root)
        lookup_ip_whois.apply_async((ip, source_ip), queue=queue, routing_key=queue,
                                    priority=queues.broker_priority(settings, urgency))
    return send


_watchlist_holder = None


def _watchlist():
    """The process's watchlist (WATCHLIST_FILE or the bundled one), re-read when the file changes."""
    global _watchlist_holder
    if _watchlist_holder is None:
        path = get_settings().watchlist_file or None
        try:
            _watchlist_holder = WatchlistHolder(path)
        except WatchlistError as exc:  # keep enriching: score with the bundled list, say so loudly
            log.error("WATCHLIST_FILE %s unusable (%s); scoring with the bundled list", path, exc)
            _watchlist_holder = WatchlistHolder(None)
    return _watchlist_holder.current()


_depths: queues.QueueDepths | None = None


def _lookups_waiting() -> int:
    """WHOIS lookups waiting in the broker's lookup queues, read fresh (once per batch)."""
    global _depths
    if _depths is None:
        s = get_settings()
        _depths = queues.QueueDepths(app, s, every=0, names=list(s.whois_queues))
    return _depths.lookups()


def _whois_step(items):
    s = get_settings()
    canaries, items = canary.split(items)
    canary.answer_whois(canaries, get_store())
    if items:
        items = whois_stage.join_whois(items, s, get_store(), _watchlist(), _dispatch_domain(s), _dispatch_ip(s),
                                       _lookups_waiting if s.whois_max_backlog else None)
    return items + canaries


@app.task(name="scout.whois", base=StageTask)
def whois(items):
    return _whois_step(items)


# The steps of the former chain dns -> domain_whois -> ip_whois -> save, for messages still queued when
# an installation upgrades: each runs today's whois step (the second finds what the first attached).
@app.task(name="scout.domain_whois", base=StageTask)
def former_domain_whois(items):
    return _whois_step(items)


@app.task(name="scout.ip_whois", base=StageTask)
def former_ip_whois(items):
    return _whois_step(items)


@app.task(name="scout.save", base=StageTask)
def save(items):
    s = get_settings()
    canaries, items = canary.split(items)
    if items:
        save_stage.save_items(items, s, get_store(), on_saved=_after_save_hook(s))
    canary.arrive(canaries, get_store())   # no document, no alert: only its times, for whoever sent it
    now = time.time()
    metrics.observe_domain_latency([now - it["seen"] for it in items if isinstance(it.get("seen"), (int, float))])
    return len(items) + len(canaries)


def _after_save_hook(settings):
    if not settings.alert_min_score:
        return None
    return get_alert_sink(settings).maybe_alert


# ------------------------------------------------------------------ WHOIS lookups (rate-limited)

def _retry_rate_limited(task, exc):
    delay = getattr(exc, "retry_after", None) or retry_countdown(task.request.retries, 30, 3600)
    get_store().incr({"whois_rate_limited": 1})
    raise task.retry(exc=exc, countdown=min(float(delay), 3600.0))


def _land(kind, key, result, queried):
    store = get_store()
    apply_whois.apply_async((kind, key, result))
    store.release(("dw:" if kind == "domain" else "ip:") + key)
    store.incr({"whois_cache_hit_late": 0 if queried else 1})   # `whois_landed` counts in apply_whois


@app.task(name="scout.lookup_domain_whois", base=StageTask, bind=True,
          rate_limit=_rate(get_settings().domain_whois_rate))
def lookup_domain_whois(self, root, source_ip=None):
    s = get_settings()
    try:
        result, queried = whois_stage.lookup_domain_cached(root, s, get_store(), source_ip, lookup_domain)
    except RateLimited as exc:
        _retry_rate_limited(self, exc)
    _land("domain", root, result, queried)
    return (result.get("parsed") or {}).get("status")


@app.task(name="scout.lookup_ip_whois", base=StageTask, bind=True,
          rate_limit=_rate(get_settings().ip_whois_rate))
def lookup_ip_whois(self, ip, source_ip=None):
    s = get_settings()
    try:
        result, queried = whois_stage.lookup_ip_cached(ip, s, get_store(), source_ip, lookup_ip)
    except RateLimited as exc:
        _retry_rate_limited(self, exc)
    _land("ip", ip, result, queried)
    return (result.get("info") or {}).get("status")


def _lookup_gave_up(stage, args, exc):
    """A lookup out of retries: its documents say why (and stay pending for a manual retry)."""
    kind = "domain" if stage == "lookup_domain_whois" else "ip"
    key = args[0]
    if type(exc).__name__ == "RateLimited":
        status = "rate_limited"
    elif isinstance(exc, whois_stage.WhoisServerDown):
        status = "error: connection failed"
    else:
        status = f"error: {type(exc).__name__}"
    result = ({"raw": "", "parsed": {"status": status}} if kind == "domain"
              else {"raw": "", "info": {"status": status}})
    apply_whois.apply_async((kind, key, result, True))
    get_store().release(("dw:" if kind == "domain" else "ip:") + key)


def start_bootstrap_refresh(settings, queue_names, **kw) -> threading.Thread | None:
    """A lookup worker refreshes the IANA RDAP bootstrap files (at most daily) in a background thread:
    never when RDAP_BOOTSTRAP_DIR is set, never on workers without a WHOIS lookup queue, never blocking."""
    if settings.rdap_bootstrap_dir:
        return None
    lookup_queues = [q for q in queue_names if q.startswith("whois.")]
    if not lookup_queues:
        return None
    ip = lookup_queues[0][len("whois."):]
    kw.setdefault("source_ip", ip if ip in settings.whois_ips else None)

    def run():
        try:
            refresh_bootstrap(settings, **kw)
        except Exception:  # noqa: BLE001 - the shipped/cached files keep working
            log.exception("RDAP bootstrap refresh failed")

    t = threading.Thread(target=run, name="rdap-bootstrap-refresh", daemon=True)
    t.start()
    return t


@worker_init.connect
def _serve_metrics_on_start(sender=None, **_):
    """METRICS_PORT: the worker serves /metrics (see scout.metrics.server for pools and processes). Here,
    before a prefork pool forks its children (they inherit the counting); the outcome is logged once the
    worker's logging is set up (worker_ready)."""
    s = get_settings()
    if not s.metrics_port:
        return
    pool = str(getattr(sender, "pool_cls", "") or "")
    if "prefork" in pool.lower() or "processes" in pool.lower():   # threads, solo, gevent: one process
        if metrics.server.multiprocess_dir():
            metrics.server.wipe_multiprocess_dir()   # the children are not forked yet
        else:
            _metrics_news.append((logging.WARNING, f"metrics: pool {pool} runs tasks in child processes; set "
                                  "PROMETHEUS_MULTIPROC_DIR (or use `scout worker`, a threads pool) or /metrics "
                                  "misses what they count"))
    try:
        port = metrics.serve(s)
        _metrics_news.append((logging.INFO, f"metrics on http://{s.metrics_address}:{port}/metrics"))
    except OSError as exc:  # the port is taken: the worker still works, without its metrics
        _metrics_news.append((logging.ERROR, f"metrics: cannot serve on port {s.metrics_port} ({exc})"))


_metrics_news: list = []


@worker_ready.connect
def _log_metrics_news(**_):
    while _metrics_news:
        level, text = _metrics_news.pop(0)
        log.log(level, "%s", text)


@worker_init.connect
def _refresh_bootstrap_on_start(sender=None, **_):
    try:
        names = list(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    except Exception:  # noqa: BLE001
        names = []
    start_bootstrap_refresh(get_settings(), names)


@app.task(name="scout.apply_whois", base=StageTask)
def apply_whois(kind, key, result, keep_pending=False):
    """A lookup has landed once its documents are updated: only then does it count as `whois_landed`
    (`scout run --source` waits for landed >= dispatched; the WHOIS backlog is read from the queues)."""
    updated = save_stage.apply_whois_result(kind, key, result, get_settings(), get_store(), keep_pending)
    get_store().incr({"whois_landed": 1})
    return updated


__all__ = ["dns", "whois", "save", "lookup_domain_whois", "lookup_ip_whois",
           "apply_whois", "Retry"]

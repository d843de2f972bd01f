"""/metrics on METRICS_PORT: one HTTP server per process, started by whoever runs the process (the CLI
for the producer, the bridge and `scout run`; the worker_init signal for Celery workers).

Worker pools: `scout worker` runs Celery's threads pool, one process, so the process's own registry is
the truth. A prefork pool (`celery -A scout worker` without `-P threads`) counts in child processes: set
PROMETHEUS_MULTIPROC_DIR (a folder of that worker's own: its parent wipes it at start) and prometheus_client's multiprocess mode
adds up the children's values; without it the page would show the parent's zeros, so the worker warns.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from scout import counters as process_counters
from scout.metrics import families
from scout.metrics.collectors import CountersFeed

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict = {"server": None, "registry": None, "before": []}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape would drown the log
        pass


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or ""


def wipe_multiprocess_dir() -> int:
    """A prefork worker's parent, before its children start: values a previous run left in
    PROMETHEUS_MULTIPROC_DIR would be added to this run's (prometheus_client asks for a wipe at start).
    -> files removed."""
    folder = multiprocess_dir()
    removed = 0
    for path in Path(folder).glob("*.db") if folder else ():
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def _registry():
    if _state["registry"] is None:
        if multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        _state["registry"] = registry
    return _state["registry"]


def _app():
    inner = make_wsgi_app(_registry())

    def app(environ, start_response):
        for before in list(_state["before"]):
            try:
                before()
            except Exception:  # noqa: BLE001 - a scrape never fails for a counter
                log.debug("metrics: pre-scrape update failed", exc_info=True)
        return inner(environ, start_response)
    return app


def serve(settings, counters=None, collectors=()) -> int | None:
    """Serve /metrics on METRICS_PORT (nothing when it is 0). Idempotent: a second call in the same process
    adds its Counters and collectors to the page already served. -> the port, or None."""
    if not settings.metrics_port:
        return None
    with _lock:
        registry = _registry()
        if counters is not None:
            _state["before"].append(CountersFeed(counters))
        for collector in collectors:
            registry.register(collector)
        if _state["server"] is None:
            disable_created_metrics()   # `_created` samples double the page for nothing Prometheus uses
            families.enable()
            process_counters.on_shared(families.count)
            server = make_server(settings.metrics_address, settings.metrics_port, _app(),
                                 ThreadingWSGIServer, handler_class=_QuietHandler)
            threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
            _state["server"] = server
            log.info("metrics on http://%s:%d/metrics", settings.metrics_address or "0.0.0.0",
                     server.server_port)
        return _state["server"].server_port


def serving_port() -> int | None:
    server = _state["server"]
    return server.server_port if server is not None else None

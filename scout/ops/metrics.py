"""/metrics of the producer, the bridge and `scout run`: their own counters plus the pipeline-wide
gauges (queues, failed store, ledger, WHOIS caches, CT logs, the canary). The metric families and the
server are scout/metrics/; this module hands them the sources only the pipeline's processes know."""
from __future__ import annotations

import logging

from scout import metrics
from scout.metrics.collectors import (PipelineCollector, canary_families, ct_log_families, queue_families,
                                      store_families)
from scout.producer.sinks import queue_lengths
from scout.store import get_store

log = logging.getLogger(__name__)


def _broker_redis(settings):
    """A Redis client on the broker, to read queues' oldest messages (None for other brokers)."""
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return None
    import redis

    return redis.Redis.from_url(settings.broker_url, socket_timeout=5, socket_connect_timeout=5)


def serve_pipeline_metrics(settings, app, counters, ct_status=None, canary_state=None) -> int | None:
    """Serve /metrics (METRICS_PORT) for a producer, bridge or `scout run` process. -> the port, or None."""
    if not settings.metrics_port:
        return None
    queues = ["dns", "whois", "save"] + settings.whois_queues
    collector = PipelineCollector(
        queues=queue_families(lambda names: queue_lengths(app, names), queues, _broker_redis(settings)),
        store=store_families(get_store()),
        ct_logs=ct_log_families(ct_status) if ct_status is not None else None,
        canary=canary_families(canary_state) if canary_state is not None else None,
    )
    try:
        return metrics.serve(settings, counters, [collector])
    except OSError as exc:  # the port is taken: keep working without metrics, loudly
        log.error("metrics: cannot serve on %s:%s (%s)", settings.metrics_address, settings.metrics_port, exc)
        return None

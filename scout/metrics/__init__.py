"""Prometheus metrics of every process (METRICS_PORT): families.py (the metric families and how a
counter name becomes one), collectors.py (values read when Prometheus scrapes: the process's Counters,
queue depths and ages, the failed store, CT logs, the canary), server.py (the /metrics endpoint, with
prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set).

Processes count what they do themselves: the producer's and bridge's Counters, and every count a
worker adds to the shared store (scout.counters.shared_counted), so summing a metric over the processes
gives the pipeline's total. Pipeline-wide gauges (queues, failed store, ledger) come from the producer
and the bridge.

May import: config, counters.
"""
from __future__ import annotations

from scout.metrics.families import count, observe_domain_latency, observe_stage, whois_lookup
from scout.metrics.server import serve, serving_port

__all__ = ["count", "observe_domain_latency", "observe_stage", "serve", "serving_port", "whois_lookup"]

"""The metric families, and how a counter name of scout.counters / the shared store becomes one.

Counter names are the ones `scout stats` shows (`names_skipped_ip`, `tasks_done:dns`, ...). A few
families carry a label (the reason, the stage, the server); every other name becomes
`scout_<name>_total`, so a counter added anywhere in the code shows up without touching this file.
All values live in prometheus_client objects: with PROMETHEUS_MULTIPROC_DIR they are shared by the
processes of a prefork worker.
"""
from __future__ import annotations

import re
import threading

from prometheus_client import Counter, Histogram

# name -> (metric, documentation): names that mean something on their own.
EXACT = {
    "frames": ("scout_frames", "Frames (certificates or domain lists) the producer read"),
    "frames_received": ("scout_feed_frames_received", "Frames the websocket reader received"),
    "names": ("scout_names", "Names found in frames, before normalisation"),
    "duplicates": ("scout_duplicates", "Names dropped as already seen (within a frame, or within CACHE_TTL)"),
    "unique": ("scout_domains_new", "New domains handed to the sink"),
    "enqueued": ("scout_domains_enqueued", "Domains published into chains"),
    "batches": ("scout_batches_enqueued", "Micro-batches (chains) published"),
    "domains_saved": ("scout_documents_saved", "Documents written (new or updated)"),
    "domains_failed": ("scout_domains_failed", "Domains of tasks that ended in the failed store"),
    "whois_dispatched": ("scout_whois_dispatched", "WHOIS lookups dispatched to the lookup queues"),
    "whois_landed": ("scout_whois_landed", "WHOIS lookups whose answer reached the documents"),
}

# prefix -> (metric, label, documentation). First match wins.
PREFIXED = (
    ("names_skipped_", "scout_names_skipped", "reason", "Names skipped, by reason (ip, too_long, bad_chars, ...)"),
    ("frames_dropped_", "scout_frames_dropped", "reason", "Frames dropped, by reason (buffer: FRAME_BUFFER full)"),
    ("frames_skipped_", "scout_frames_skipped", "reason", "Frames skipped, by reason"),
    ("frames_", "scout_frames_skipped", "reason", "Frames skipped, by reason"),
    ("dropped_", "scout_domains_dropped", "reason",
     "Domains dropped, by reason (backlog: MAX_BACKLOG, publish: broker away, nats_buffer)"),
    ("whois_server:", "scout_whois_queries_by_server", "server", "WHOIS/RDAP queries, by the server answering"),
    ("whois_status:", "scout_whois_domain_status", "status", "Domain WHOIS lookups, by outcome"),
)
TASKS = re.compile(r"^tasks_(done|failed|retried):(.+)$")
CACHE = re.compile(r"^whois_(domain|ip)_cache_(hit|miss)$")

# Server names come from WHOIS answers (referrals), which anyone can write: one series per server would
# let them grow a worker's memory without end. Past this many servers, the rest count as "_other".
MAX_SERVERS = 500
_servers: set[str] = set()

_lock = threading.Lock()
_counters: dict[str, Counter] = {}
_children: dict[str, object] = {}   # counter name -> its labelled child: one dict look-up per count


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    with _lock:
        c = _counters.get(name)
        if c is None:
            c = _counters[name] = Counter(name, doc, labels)
        return c


def family_of(name: str) -> tuple[str, str, dict[str, str]]:
    """A counter name -> (metric name without _total, documentation, labels)."""
    if name in EXACT:
        metric, doc = EXACT[name]
        return metric, doc, {}
    m = TASKS.match(name)
    if m:
        return "scout_tasks", "Stage tasks, by stage and outcome (done, failed, retried)", {
            "stage": m.group(2), "outcome": m.group(1)}
    m = CACHE.match(name)
    if m:
        return "scout_whois_cache_lookups", "WHOIS cache look-ups of the chain's WHOIS step, by cache and result", {
            "cache": m.group(1), "result": m.group(2)}
    for prefix, metric, label, doc in PREFIXED:
        if name.startswith(prefix) and len(name) > len(prefix):
            return metric, doc, {label: name[len(prefix):]}
    clean = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return f"scout_{clean}", f"Count of `{name}` (the counter `scout stats` shows)", {}


def count(counts: dict[str, int]) -> None:
    """Add counts by counter name (what a process adds to its Counters or to the shared store)."""
    for name, n in counts.items():
        if n <= 0 or name.startswith("producer:"):  # producer:* are the producer's own, pushed for stats
            continue
        child = _children.get(name)
        if child is None:
            metric, doc, labels = family_of(name)
            if "server" in labels:
                labels["server"] = bounded_server(labels["server"])
            c = _counter(metric, doc, tuple(sorted(labels)))
            child = c.labels(**labels) if labels else c
            if labels.get("server") != "_other":   # names past the cap are not remembered either
                _children[name] = child
        child.inc(n)


_enabled = False


def enable() -> None:
    """Histograms are observed only in processes that serve them (METRICS_PORT set)."""
    global _enabled
    _enabled = True


STAGE_SECONDS = Histogram(
    "scout_stage_duration_seconds", "Time one task of a stage ran (a micro-batch for dns, whois, save)",
    ["stage"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
DOMAIN_LATENCY = Histogram(
    "scout_domain_latency_seconds", "From a domain's sighting to its document saved",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
WHOIS_LOOKUPS = Counter(
    "scout_whois_lookups", "WHOIS/RDAP lookups made (cache misses), by kind, server and status",
    ["kind", "server", "status"])


def observe_stage(stage: str, seconds: float) -> None:
    if _enabled:
        STAGE_SECONDS.labels(stage=stage).observe(seconds)


def observe_domain_latency(seconds: list[float]) -> None:
    if _enabled:
        for s in seconds:
            DOMAIN_LATENCY.observe(max(0.0, s))


def bounded_server(server: str) -> str:
    with _lock:
        if server in _servers:
            return server
        if len(_servers) < MAX_SERVERS:
            _servers.add(server)
            return server
    return "_other"


def whois_lookup(kind: str, server: str, status: str) -> None:
    if _enabled:
        WHOIS_LOOKUPS.labels(kind=kind, server=bounded_server(server or "?"),
                             status=(status or "?").split(":")[0]).inc()

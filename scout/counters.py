"""Thread-safe named counters kept in the process (the producer, feeds, CT readers).

Stages that run in Celery workers count in the shared store instead (scout.store), so `scout stats`
sees every worker; this class is for one process's own view and its periodic summary line. `on_shared` lets a process
follow what it adds to the shared store too (its Prometheus metrics do).
"""
from __future__ import annotations

import threading
from collections import Counter


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter()

    def incr(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._c[name] += n

    def get(self, name: str) -> int:
        with self._lock:
            return self._c[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)


# What this process adds to the shared store's counters (scout.store calls shared_counted on every incr),
# for whoever wants a per-process view of it: the Prometheus metrics of a worker (scout.metrics).
_shared_listeners: list = []


def on_shared(listener) -> None:
    """Call `listener(counts)` with every dict of counts this process adds to the shared store."""
    if listener not in _shared_listeners:
        _shared_listeners.append(listener)


def shared_counted(counts: dict[str, int]) -> None:
    for listener in _shared_listeners:
        listener(counts)

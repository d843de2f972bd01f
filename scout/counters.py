"""Thread-safe named counters kept in the process (the producer, feeds, CT readers).

Stages that run in Celery workers count in the shared store instead (scout.store), so `scout stats`
sees every worker; this class is for one process's own view and its periodic summary line.
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

"""Running it: stats.py (`scout stats`), failed.py (the failed-task store: list, show, retry, purge),
embedded.py (the in-process workers of `scout run`, and its wait until the work is done), metrics.py
(/metrics of the producer, the bridge and `scout run`), canary.py (`scout canary` and CANARY_INTERVAL).

May import: config, names, celery, queues, counters, producer, stages, store, metrics.
"""

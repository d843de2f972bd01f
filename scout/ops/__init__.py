"""Running it: stats.py (`scout stats`), failed.py (the failed-task store: list, show, retry, purge),
embedded.py (the in-process workers of `scout run`, and its wait until the work is done), metrics.py
(/metrics of the producer, the bridge and `scout run`), canary.py (`scout canary` and CANARY_INTERVAL),
watchdog.py (inside every worker: its lease, the batches it holds, dead workers' batches re-sent, stall
detection; Celery loads it with the tasks), supervisor.py (`scout worker` runs Celery under it: restarted
when it stalls or dies), malloc.py (fewer glibc malloc arenas in a threaded worker: flat memory).

May import: config, names, celery, queues, counters, producer, stages, store, metrics.
"""

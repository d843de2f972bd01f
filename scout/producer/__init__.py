"""From frames to chains on the broker: names.py (normalise, registrable root), producer.py (parse,
de-duplicate, micro-batch; the live and recording loops), sinks.py (the Sink interface and the Celery
sink: chains, backpressure, retry buffer), nats_sink.py (the NATS JetStream sink), bridge.py (JetStream
-> chains), ledger.py (sends again what the broker lost).

May import: config, celery, counters, queues, sources, stages, store, watchlist.
"""

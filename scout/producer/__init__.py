"""From frames to chains on the broker: producer.py (parse, normalise names with scout.names,
de-duplicate, micro-batch; the live and recording loops), certdedup.py (one issuance's precertificate and
certificate copies in several logs handled once), sinks.py (the Sink interface and the Celery
sink: chains, backpressure, retry buffer), nats_sink.py (the NATS JetStream sink), bridge.py (JetStream
-> chains), ledger.py (sends again what the broker lost).

May import: config, names, celery, counters, queues, sources, stages, store, watchlist.
"""

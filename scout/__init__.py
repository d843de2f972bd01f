"""certstream-scout: Certificate Transparency -> new domains -> DNS -> WHOIS/RDAP -> one JSON document each.

The folders follow a domain's way through the system:

    sources/    frames from CT logs (ct/), a certstream websocket (feed), recordings, the replay server
    producer/   names normalised and de-duplicated, micro-batches onto the broker (or NATS and its bridge)
                (the broker: Redis, RabbitMQ or in-process, carries chains dns -> whois -> save)
    stages/     what Celery workers run: dns, whois (cache joins; lookups dispatched), save (documents)
    whois/      the lookups themselves: RDAP, port-43 WHOIS, IP RDAP and ASN, bootstrap files
    watchlist   the rules that score a name
    db/         the SQL store beside the files (SQLite or PostgreSQL): upserts, `scout query`'s filters
    store/      shared state: de-duplication, caches, counters, the ledger, failed tasks (Redis or memory)
    ops/        stats, the failed-task store, the in-process workers of `scout run`
    web/        `scout web`: pages and a JSON API over the SQL store (Starlette, Jinja2, uvicorn)
    cli/        the `scout` command, thin over the folders above

At the top: config.py (every setting), celery.py (the Celery app), queues.py (queues and routing),
counters.py (a process's own counters), names.py (domain names: normalise, registrable root; shared by
the producer, the watchlist and the CLI).

Import rules (tests/test_layout.py holds every module to them; each folder's __init__ has its own line,
these are the parts without one):
    config, queues, counters, names, whois: May import: nothing.
    watchlist: May import: names.
    celery: May import: config.
    __main__: May import: cli.
"""

"""What Celery workers run, as plain functions over micro-batches of items, and the thin tasks over them.

chain.py (the chain dns -> whois -> save, built from task names, and its publication through the
in-flight ledger), dns.py (the DNS stage), whois.py (the WHOIS step's cache joins and the cached lookups),
ipcache.py (the IP WHOIS cache by network), priority.py (watchlist score and WHOIS urgency), save.py
(saving documents, applying WHOIS answers that land later; files and the SQL store), files.py (locked, atomic document files),
document.py (the document's fields, path, schema and statuses), failures.py (the failed-task store's
entries), alerts.py (alert file and webhook), canary.py (the canary's answers without network), tasks.py (the Celery tasks; nothing else imports it).

May import: config, names, celery, queues, counters, store, db, whois, watchlist, metrics.
"""

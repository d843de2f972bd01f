"""The naive design, for comparison only: one chain of three Celery tasks per domain.

    naive.dns(domain) -> naive.whois(record) -> naive.save(record)

Same broker, same DNS server, same six queries (scout.stages.dns for one name), the same warm WHOIS
cache (scout's Redis keys) and the same document writer, but no micro-batching. Configured from
NAIVE_BROKER, NAIVE_DNS_SERVER and NAIVE_OUTPUT_DIR. Workers:
    celery -A bench.naive_app worker -P threads -Q naive_dns -c 50
"""
from __future__ import annotations

import dataclasses
import os
import time

from celery import Celery

app = Celery("naive")
app.conf.update(
    broker_url=os.environ.get("NAIVE_BROKER", "redis://127.0.0.1:6379/11"),
    task_serializer="json", accept_content=["json"], task_ignore_result=True, result_backend=None,
    task_routes={"naive.dns": {"queue": "naive_dns"}, "naive.whois": {"queue": "naive_whois"},
                 "naive.save": {"queue": "naive_save"}},
    task_acks_late=True, worker_prefetch_multiplier=1, worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True, worker_send_task_events=True, task_send_sent_event=True,
)

_settings = None
_store = None


def settings():
    global _settings
    if _settings is None:
        from scout.config import Settings, parse_dns_servers

        _settings = dataclasses.replace(
            Settings(), dns_servers=tuple(parse_dns_servers("DNS", os.environ.get("NAIVE_DNS_SERVER", ""))),
            output_dir=os.environ.get("NAIVE_OUTPUT_DIR", "naive_out"), dns_timeout=2.0, dns_retries=2)
    return _settings


def store():
    global _store
    if _store is None:
        from scout.store import RedisStore

        _store = RedisStore(os.environ.get("NAIVE_BROKER", "redis://127.0.0.1:6379/11"))
    return _store


@app.task(name="naive.dns")
def dns(domain, seen):
    from scout.stages import dns as dns_stage
    from scout.names import root_domain

    rec = dns_stage.resolve_batch([domain], settings())[0]
    rec.pop("transient", None)
    return {"d": domain, "r": root_domain(domain), "seen": seen, "dns": rec}


@app.task(name="naive.whois")
def whois(item):
    from scout.stages.ipcache import cached_ip_result

    st = store()
    item["dw"] = st.get_json("dw:" + item["r"]) or {"raw": "", "parsed": {"status": "pending"}}
    item["iw"] = {ip: cached_ip_result(st, ip) or {"raw": "", "info": {"status": "pending"}}
                  for ip in item["dns"].get("a_records", [])}
    return item


@app.task(name="naive.save")
def save(item):
    from scout.stages import document as output, files as save_stage

    doc = output.new_document(item, time.time())
    save_stage.update_document(settings().output_dir, item["r"], item["d"],
                               lambda old: output.merge_documents(old, doc))
    store().r.hincrby("naive:counters", "saved", 1)
    return 1


def enqueue(domain: str, seen: float):
    from celery import chain

    return chain(dns.s(domain, seen), whois.s(), save.s()).apply_async()

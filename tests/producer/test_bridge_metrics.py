"""Issue 18, metrics of `scout bridge`: a real bridge (METRICS_PORT) between the shared NATS JetStream and
Redis; with no worker running, its page shows the messages it took and acknowledged, the chains it
enqueued and the dns queue filling up, with the age of its oldest message."""
from __future__ import annotations

import json

from tests.conftest import free_port, wait_for
from tests.producer.test_nats import (REDIS_DB_URL, base_env, bridges, broker, local_whois,  # noqa: F401 (fixtures)
                                      produce, stream)
from tests.support.metrics import scrape_or_none, total, value


def test_bridge_serves_its_counters_and_the_queues(tmp_path, dns_server, local_whois, broker, stream, bridges):
    names = [f"b{i}.bridge-metrics.example" for i in range(30)]
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(json.dumps({"message_type": "dns_entries", "data": names[i:i + 5]}) + "\n"
                           for i in range(0, len(names), 5)))
    port = free_port()
    env = base_env(tmp_path, dns_server, local_whois, stream, BROKER_URL=REDIS_DB_URL, METRICS_PORT=port,
                   METRICS_ADDRESS="127.0.0.1", BATCH_SIZE=10)
    bridge = bridges(env, tmp_path, "metrics")
    assert produce(env, rec)["nats_published"] == len(names)
    m = wait_for(lambda: (s := scrape_or_none(port)) and total(s, "scout_bridge_acked_total") >= len(names) and s,
                 timeout=60, message="the bridge's page counting what it acknowledged")
    assert total(m, "scout_bridge_messages_total") >= len(names)
    assert total(m, "scout_domains_enqueued_total") == len(names)
    assert total(m, "scout_bridge_batches_total") >= len(names) / 10
    # No worker: every chain waits in the dns queue, the oldest for a measurable time.
    assert value(m, "scout_queue_messages", queue="dns") == total(m, "scout_bridge_batches_total")
    assert value(m, "scout_queue_oldest_message_age_seconds", queue="dns") > 0
    assert value(m, "scout_ledger_domains", state="in_flight") == len(names)
    bridge.stop()

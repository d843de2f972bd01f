"""Issue 14: an alert per domain sighting, not one more when the save step runs the same batch again
(a Celery retry after a failed write, or the broker delivering the message twice), and the alert carries
the document as written (merged: first_seen, seen_count). Real Redis store, real files."""
from __future__ import annotations

import dataclasses
import json

import pytest

from scout.config import Settings
from scout.stages.alerts import AlertSink
from scout.stages.save import save_items
from scout.store import RedisStore
from tests.conftest import emptied_redis, read_documents, redis_db


@pytest.fixture
def store():
    for url in emptied_redis(redis_db(14)):
        yield RedisStore(url)


def _item(domain: str, seen: float, score: int) -> dict:
    return {"d": domain, "r": domain, "seen": seen, "score": score, "matches": [],
            "dns": {"a_records": ["8.8.8.8"], "dns_status": {"A": "NOERROR"}},
            "dw": {"raw": "", "parsed": {"status": "pending"}}, "iw": {}}


def _alerts(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_alert_once_per_sighting_with_the_merged_document(tmp_path, store):
    alerts_file = tmp_path / "alerts.jsonl"
    settings = dataclasses.replace(Settings(), output_dir=str(tmp_path / "out"), alert_min_score=50,
                                   alert_file=str(alerts_file))
    sink = AlertSink(settings)
    batch = [_item("login-bank.example", 1_700_000_000.0, 80), _item("quiet.example", 1_700_000_000.0, 5)]

    save_items([dict(it) for it in batch], settings, store, on_saved=sink.maybe_alert)
    assert [a["domain"] for a in _alerts(alerts_file)] == ["login-bank.example"]

    # The same batch again: a retry or a redelivery. Documents unchanged in count, no second alert.
    save_items([dict(it) for it in batch], settings, store, on_saved=sink.maybe_alert)
    save_items([dict(it) for it in batch[:1]], settings, store, on_saved=sink.maybe_alert)
    assert len(_alerts(alerts_file)) == 1
    assert read_documents(tmp_path / "out")["login-bank.example"]["seen_count"] == 1

    # A later sighting of the same domain is news: one alert, carrying the merged document.
    later = _item("login-bank.example", 1_700_086_400.0, 80)
    save_items([later], settings, store, on_saved=sink.maybe_alert)
    save_items([dict(later)], settings, store, on_saved=sink.maybe_alert)     # ... delivered twice
    alerts = _alerts(alerts_file)
    assert len(alerts) == 2
    second = alerts[1]
    assert second["seen_count"] == 2
    assert second["first_seen"] == "2023-11-14T22:13:20.000Z" and second["last_seen"] == "2023-11-15T22:13:20.000Z"
    written = read_documents(tmp_path / "out")["login-bank.example"]
    # The document as written (the redelivered save wrote it once more since: a newer `timestamp`).
    assert {k: v for k, v in second.items() if k != "timestamp"} == \
        {k: v for k, v in written.items() if k != "timestamp"}


def test_a_save_message_delivered_twice_to_a_real_worker_alerts_once(tmp_path, workers):
    """The broker hands the same `scout.save` message to a worker twice (as after a lost ack): one alert,
    one sighting. A real `scout worker save` process on Redis."""
    import celery

    from tests.conftest import scout_env, wait_for
    from tests.support.whois import counters

    url = redis_db(14)
    for _ in emptied_redis(url):
        env = scout_env(BROKER_URL=url, REDIS_URL=url, OUTPUT_DIR=str(tmp_path / "out"), ALERT_MIN_SCORE=50,
                        ALERT_FILE=str(tmp_path / "alerts.jsonl"))
        workers(env).start("save")
        sender = celery.Celery(broker=url)
        items = [_item("login-bank.example", 1_700_000_000.0, 80), _item("quiet.example", 1_700_000_000.0, 5)]
        for _ in range(2):
            sender.send_task("scout.save", args=(items,), queue="save", routing_key="save")
        wait_for(lambda: counters(url).get("tasks_done:save", 0) >= 2, 90, message="both deliveries saved")
        alerts = _alerts(tmp_path / "alerts.jsonl")
        assert [a["domain"] for a in alerts] == ["login-bank.example"]
        assert alerts[0]["seen_count"] == 1
        assert read_documents(tmp_path / "out")["login-bank.example"]["seen_count"] == 1
        sender.close()

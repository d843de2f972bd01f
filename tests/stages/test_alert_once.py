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

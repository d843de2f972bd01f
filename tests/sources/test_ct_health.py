"""Per-log completeness and lag (issue 18): a stalled log, a rate-limiting log and a lagging log next to a
healthy one, each shown correctly by CTSource.status() and by `scout stats` (through the producer's
publication in Redis); CT_LAG_ALERT warns once per episode; a log that answers every poll but stops
growing is `stalled` after CT_STALL_ALERT."""
from __future__ import annotations

import json
import logging
import threading
import time

from scout.config import Settings
from scout.ops.stats import collect_stats, format_ct_logs, format_stats
from scout.producer.producer import Producer
from scout.sources.ct.health import LogHealth
from scout.store import RedisStore, set_store
from tests.servers.ct_log import X509_ENTRY, LogItem, RFC6962Server, log_list
from tests.sources.test_ct import FAST, Harness, pki, servers, write_list  # noqa: F401 (fixtures)


class StallingLog(RFC6962Server):
    """Answers nothing while `stalled` is set (the client's read timeout fires), then recovers."""

    def __init__(self, *a, **kw) -> None:
        self.stalled = threading.Event()
        super().__init__(*a, **kw)

    def route(self, path, query):
        end = time.monotonic() + 30
        while self.stalled.is_set() and time.monotonic() < end:
            time.sleep(0.05)
        return super().route(path, query)


class SlowLog(RFC6962Server):
    """get-entries takes `delay` seconds: a log we read slower than it grows."""

    delay = 0.0

    def route(self, path, query):
        if path.endswith("/get-entries"):
            time.sleep(self.delay)
        return super().route(path, query)


def by_name(status: list[dict]) -> dict[str, dict]:
    return {s["name"]: s for s in status}


def test_stalled_rate_limited_and_lagging_logs_show_in_status_and_stats(tmp_path, servers, pki, redis_url, caplog):
    caplog.set_level(logging.INFO, logger="scout.ct")
    fresh = [pki.item(f"h{i}.example.test", [f"h{i}.example.test"]) for i in range(3)]
    healthy = servers(RFC6962Server, fresh)
    stalled = servers(StallingLog, fresh, path="/stall")
    stalled.stalled.set()
    limited = servers(RFC6962Server, fresh, path="/limited")
    limited.fail("/ct/v1/get-sth", [429] * 10000, retry_after="40")
    old = LogItem(X509_ENTRY, fresh[0].cert_der, fresh[0].chain, timestamp=int((time.time() - 7200) * 1000))
    lagging = servers(SlowLog, [old] * 400, path="/slow", max_batch=8)
    lagging.delay = 0.3
    lst = write_list(tmp_path, log_list(rfc6962=[("H", "Healthy log", healthy.url), ("S", "Stalled log", stalled.url),
                                                 ("L", "Limited log", limited.url), ("G", "Lagging log", lagging.url)]))
    opts = {**FAST, "http_timeout": (1.0, 1.0), "backoff_max": 60.0}
    h = Harness(lst, **opts)
    h.src.lag_alert = 5.0
    with h:
        assert h.wait_until(lambda: (by_name(h.src.status()).get("Stalled log") or {}).get("lagging")
                            and (by_name(h.src.status()).get("Lagging log") or {}).get("lagging")
                            and (by_name(h.src.status()).get("Limited log") or {}).get("errors", 0) >= 1, 90)
        st = by_name(h.src.status())
        ok, stall, limit, lag = st["Healthy log"], st["Stalled log"], st["Limited log"], st["Lagging log"]
        now = time.time()
        # healthy: read to the end, recent success, no errors, small lag
        assert (ok["kind"], ok["tree_size"], ok["position"], ok["behind"], ok["errors"]) == ("rfc6962", 3, 3, 0, 0)
        assert ok["last_success"] > now - 10 and ok["lag_seconds"] < 5 and not ok["lagging"]
        assert ok["backoff_until"] is None and ok["gaps"] == []
        # stalled: never answered; timeouts counted, lag counts from the start and is over the alert
        assert stall["last_success"] is None and stall["tree_size"] is None and stall["errors"] >= 1
        assert "timed out" in stall["last_error"].lower() or "timeout" in stall["last_error"].lower()
        assert stall["lag_seconds"] > 5
        # rate-limited: 429 counted, backing off as long as Retry-After asked
        assert limit["last_success"] is None and "429" in limit["last_error"]
        assert limit["backoff_until"] is not None and limit["backoff_until"] > now + 20
        # lagging: reads, but far behind; lag is the age of the newest entry it read (2 h)
        assert lag["errors"] == 0 and lag["tree_size"] == 400 and lag["behind"] > 0
        assert 7000 < lag["lag_seconds"] < 7400
        # published for `scout stats` exactly as status() says
        store = RedisStore(redis_url)
        set_store(store)
        try:
            p = Producer(Settings(), None, store)
            p.ct_status = h.src.status
            p.publish_ct_status()
            stats = collect_stats(Settings(redis_url=redis_url))
            text = format_stats(stats)
        finally:
            set_store(None)
        shown = by_name(stats["ct_logs"])
        assert set(shown) == {"Healthy log", "Stalled log", "Limited log", "Lagging log"}
        assert shown["Lagging log"]["lagging"] and shown["Stalled log"]["lagging"]
        assert shown["Limited log"]["backoff_until"] == limit["backoff_until"]
        assert json.loads(json.dumps(stats["ct_logs"])) == stats["ct_logs"]
        assert "LAG Lagging log" in text and "LAG Stalled log" in text and " lagging, 0 stalled, 0 gaps" in text
        # the lagging log catches up once it is read faster, and its warning ends
        lagging.delay = 0.0
        stalled.stalled.clear()
        assert h.wait_until(lambda: not by_name(h.src.status())["Lagging log"]["lagging"], 90)
        assert by_name(h.src.status())["Lagging log"]["behind"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "Lagging log" in r.getMessage()]
    assert len([w for w in warnings if "behind (CT_LAG_ALERT" in w]) == 1, warnings
    assert len([w for w in warnings if "caught up" in w]) == 1, warnings
    assert h.counters.get("ct_lag_alerts") >= 2


def test_lag_alert_warns_once_per_episode(caplog):
    caplog.set_level(logging.WARNING, logger="scout.ct")
    hl = LogHealth("Example log", "https://ct.example.test/", "tiled")
    t0 = time.time()
    hl.caught_up(t0)
    assert hl.check_lag(60, now=t0 + 30) is None and not hl.lagging
    assert hl.check_lag(60, now=t0 + 61) is True and hl.lagging
    assert hl.check_lag(60, now=t0 + 600) is None          # still lagging: no second warning
    hl.caught_up(t0 + 590)
    assert hl.check_lag(60, now=t0 + 600) is False and not hl.lagging
    assert hl.check_lag(0, now=t0 + 10000) is None          # 0 = off
    assert len([r for r in caplog.records if "Example log" in r.getMessage()]) == 2
    snap = hl.snapshot(10, 15, now=t0 + 600)
    assert snap["behind"] == 5 and snap["lag_seconds"] == 10 and snap["kind"] == "tiled"


def test_a_log_whose_head_stops_growing_is_stalled_until_it_grows(servers, pki, tmp_path, caplog):
    """Every poll succeeds and we hold every entry, so the lag stays small: only the head's age tells."""
    caplog.set_level(logging.WARNING, logger="scout.ct")
    srv = servers(RFC6962Server, [pki.item(f"f{i}.example.test", [f"f{i}.example.test"]) for i in range(3)])
    h = Harness(write_list(tmp_path, log_list(rfc6962=[("F", "Frozen log", srv.url)])))
    h.src.lag_alert, h.src.stall_alert = 60.0, 1.5
    with h:
        assert h.wait_until(lambda: (h.src.status() or [{}])[0].get("stalled"), 30)
        (frozen,) = h.src.status()
        assert frozen["position"] == frozen["tree_size"] == 3 and frozen["head_age_seconds"] > 1.5
        assert frozen["lag_seconds"] < 1.5 and not frozen["lagging"] and frozen["errors"] == 0
        srv.append([pki.item("g.example.test", ["g.example.test"])])
        assert h.wait_until(lambda: not h.src.status()[0]["stalled"], 30)
        assert h.src.status()[0]["position"] == 4 and h.src.status()[0]["head_age_seconds"] < 1.5
    text = format_ct_logs({"ct_logs": [frozen], "gaps": []})
    assert "STALLED Frozen log" in text[1] and " 1 stalled," in text[0]
    warnings = [r.getMessage() for r in caplog.records if "Frozen log" in r.getMessage()]
    assert len([w for w in warnings if "has not grown for" in w]) == 1, warnings
    assert len([w for w in warnings if "grows again" in w]) == 1, warnings
    assert h.counters.get("ct_stall_alerts") == 1 and h.counters.get("ct_lag_alerts") == 0


def test_head_age_counts_from_the_last_growth(caplog):
    hl = LogHealth("Example log", "https://ct.example.test/", "rfc6962")
    hl.head(10)
    t0 = hl.head_grew_at
    hl.head(10)                                            # the same size again: not growth
    hl.head(9)                                             # a smaller head (another frontend): not growth
    assert hl.head_grew_at == t0 and hl.head_size == 10
    assert hl.check_stall(60, now=t0 + 61) is True and hl.snapshot(10, 10, now=t0 + 61)["stalled"]
    assert hl.check_stall(0, now=t0 + 10000) is None         # 0 = off
    hl.head(11)
    assert hl.check_stall(60) is False and hl.head_age_seconds() < 5


def test_producers_following_different_logs_all_show_in_stats(redis_url):
    """Two producers (CT_LOGS split between them) and a restarted one: scout stats shows every log once,
    the newest view of each winning, instead of the last producer's logs only."""
    store = RedisStore(redis_url)
    set_store(store)
    try:
        views = {}
        for pid, logs in (("old", [("A", 10)]), ("one", [("A", 12), ("B", 5)]), ("two", [("C", 7)])):
            p = Producer(Settings(), None, store)
            p.producer_id = f"box:{pid}"
            p.ct_status = lambda logs=logs: [{"name": n, "url": f"https://{n}.example.test/", "position": pos,
                                              "gaps": []} for n, pos in logs]
            p.publish_ct_status()
            views[pid] = p
            time.sleep(0.01)
        stats = collect_stats(Settings(redis_url=redis_url))
    finally:
        set_store(None)
    shown = {lg["name"]: (lg["position"], lg["producer"]) for lg in stats["ct_logs"]}
    assert shown == {"A": (12, "box:one"), "B": (5, "box:one"), "C": (7, "box:two")}
    assert stats["ct_logs_updated_at"] >= time.time() - 60

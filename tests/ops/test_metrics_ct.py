"""Issue 18, per-log CT metrics: loopback CT logs (one healthy, one stalled, one answering 429, one lagging
two hours behind and read slower than it grows) read by a real CTSource; the metrics collector the producer serves
turns its status() into scout_ct_log_* gauges, rendered by prometheus_client and parsed back."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scout.metrics.collectors import PipelineCollector, ct_log_families
from tests.servers.ct_log import X509_ENTRY, LogItem, RFC6962Server, log_list
from tests.sources.test_ct import Harness, pki, servers, write_list  # noqa: F401 (fixtures)
from tests.sources.test_ct_health import SlowLog, StallingLog, by_name


def render(collector) -> dict:
    registry = CollectorRegistry()
    registry.register(collector)
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, s.labels.get("log") or s.labels.get("part"))] = s.value
    return out


def test_stalled_rate_limited_and_lagging_logs_show_in_metrics(tmp_path, servers, pki):
    fresh = [pki.item(f"m{i}.example.test", [f"m{i}.example.test"]) for i in range(3)]
    healthy = servers(RFC6962Server, fresh)
    stalled = servers(StallingLog, fresh, path="/stall")
    stalled.stalled.set()
    limited = servers(RFC6962Server, fresh, path="/limited")
    limited.fail("/ct/v1/get-sth", [429] * 10000, retry_after="40")
    old = LogItem(X509_ENTRY, fresh[0].cert_der, fresh[0].chain, timestamp=int((time.time() - 7200) * 1000))
    lagging = servers(SlowLog, [old] * 400, path="/slow", max_batch=8)
    lagging.delay = 0.3
    lst = write_list(tmp_path, log_list(rfc6962=[("H", "Healthy log", healthy.url), ("R", "Limited log", limited.url),
                                                 ("G", "Lagging log", lagging.url), ("S", "Stalled log", stalled.url)]))
    h = Harness(lst, http_timeout=(1.0, 1.0), backoff_max=60.0)
    h.src.lag_alert = 5.0
    collector = PipelineCollector(ct_logs=ct_log_families(h.src.status))
    with h:
        assert h.wait_until(lambda: (by_name(h.src.status()).get("Lagging log") or {}).get("lagging")
                            and (by_name(h.src.status()).get("Stalled log") or {}).get("lagging")
                            and (by_name(h.src.status()).get("Limited log") or {}).get("errors", 0) >= 1
                            and (by_name(h.src.status()).get("Healthy log") or {}).get("position") == 3, 30)
        m = render(collector)
        stalled.stalled.clear()
    assert m[("scout_scrape_errors", "ct_logs")] == 0
    # healthy: read to the end, no lag alert, no errors
    assert m[("scout_ct_log_tree_size", "Healthy log")] == 3 and m[("scout_ct_log_position", "Healthy log")] == 3
    assert m[("scout_ct_log_behind_entries", "Healthy log")] == 0
    assert m[("scout_ct_log_lagging", "Healthy log")] == 0 and m[("scout_ct_log_errors", "Healthy log")] == 0
    assert m[("scout_ct_log_lag_seconds", "Healthy log")] < 5
    assert m[("scout_ct_log_stalled", "Healthy log")] == 0 and 0 <= m[("scout_ct_log_head_age_seconds", "Healthy log")] < 60
    # rate-limited: errors counted; no tree head yet, so no size or backlog to show (not a false 0)
    assert m[("scout_ct_log_errors", "Limited log")] >= 1
    assert ("scout_ct_log_tree_size", "Limited log") not in m
    # stalled: never answered; timeouts counted, lagging since it was first followed, no size known
    assert m[("scout_ct_log_errors", "Stalled log")] >= 1 and m[("scout_ct_log_lagging", "Stalled log")] == 1
    assert m[("scout_ct_log_lag_seconds", "Stalled log")] > 5 and ("scout_ct_log_tree_size", "Stalled log") not in m
    # lagging: far behind, two hours of lag, flagged
    assert m[("scout_ct_log_behind_entries", "Lagging log")] > 0
    assert 7000 < m[("scout_ct_log_lag_seconds", "Lagging log")] < 7400
    assert m[("scout_ct_log_lagging", "Lagging log")] == 1
    assert m[("scout_ct_log_gap_entries", "Lagging log")] == 0


def test_a_failing_source_leaves_the_rest_of_the_page():
    def broken():
        raise ConnectionError("redis away")

    m = render(PipelineCollector(ct_logs=ct_log_families(lambda: [{"name": "A", "behind": 7}]), store=broken))
    assert m[("scout_ct_log_behind_entries", "A")] == 7
    assert m[("scout_scrape_errors", "ct_logs")] == 0 and m[("scout_scrape_errors", "store")] == 1

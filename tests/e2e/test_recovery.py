"""Issue 16, "Recovery, not just no loss", with the default settings (VISIBILITY_TIMEOUT=2h,
LEDGER_TIMEOUT=1h, WORKER_LEASE=30s, WORKER_STALL_TIMEOUT=2m):

- a save worker SIGKILLed while it runs every batch: every domain is saved within 2 minutes of its
  death, on Redis (the broker would return the messages after 2 h: the worker's lease expires and a live
  worker re-sends its batches from the ledger) and on RabbitMQ (redelivered at once);
- Redis restarted twice under load: every `scout worker` (supervised) still consumes afterwards.

Real Redis, RabbitMQ, nsd, the local RDAP server, `celery worker` and `scout worker` processes.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from scout.store import RedisStore
from scout.store.base import HOLDERS
from tests.conftest import emptied_redis, need_service, read_documents, redis_db, run_scout, scout_env, wait_for
from tests.e2e.test_reliability import lock_roots, unlock
from tests.servers.rdap import RdapServer, rdap_bootstrap
from tests.support.feed import recording
from tests.support.reliability import PrivateRedis, Proc, start_worker

pytestmark = pytest.mark.slow

LOCKED_ROOTS = ["acme-widgets.example", "examplebank.test"]
N = 600                                   # 6 batches of the default BATCH_SIZE=100
RECOVERY_GOAL = 120.0                     # s after the worker's death


@pytest.fixture
def store_url():
    yield from emptied_redis(redis_db(15))


@pytest.fixture
def rabbit_vhost():
    need_service("RabbitMQ", 5672)
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    vhost = f"scout-recovery-{os.getpid()}"
    for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        r = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"rabbitmqctl {' '.join(args)}: {r.stdout}{r.stderr}"
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


@pytest.fixture
def procs():
    started: list[Proc] = []
    yield started
    for p in started:
        p.stop(signal.SIGKILL, timeout=10)


def _produce(env: dict, names: list[str], path: Path) -> dict:
    r = run_scout(["produce", "--source", str(recording(path, names, 10))], env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_sigkilled_worker_every_domain_saved_within_two_minutes(broker, tmp_path, store_url, dns_server,
                                                               procs, request):
    broker_url = store_url if broker == "redis" else request.getfixturevalue("rabbit_vhost")
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=broker_url, REDIS_URL=store_url, OUTPUT_DIR=out, DNS_SERVER=dns_server,
                    WHOIS_MIN_SCORE=1000)
    for key in ("VISIBILITY_TIMEOUT", "LEDGER_TIMEOUT", "WORKER_LEASE", "WORKER_STALL_TIMEOUT", "BATCH_SIZE"):
        env.pop(key, None)                                       # the defaults
    names = [f"n{i}.{LOCKED_ROOTS[i % 2]}" for i in range(N)]
    r = redis.Redis.from_url(store_url)
    locks = lock_roots(out, LOCKED_ROOTS)                        # every save task blocks on its root's lock
    try:
        procs.append(start_worker(env, tmp_path, "dns", "dns"))
        procs.append(start_worker(env, tmp_path, "whois", "whois"))
        procs.append(save_a := start_worker(env, tmp_path, "save", "save-a"))
        assert _produce(env, names, tmp_path / "rec.jsonl")["enqueued"] == N
        wait_for(lambda: _held_by(r, save_a.proc.pid) == N // 100, timeout=120,
                 message="every batch held by a save task of save-a")
        assert not read_documents(out)
        save_a.stop(signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        unlock(locks)
    procs.append(start_worker(env, tmp_path, "save", "save-b"))
    wait_for(lambda: len(read_documents(out)) == N, timeout=RECOVERY_GOAL + 60, interval=1,
             message="every domain saved after the kill")
    recovered = time.monotonic() - killed_at
    print(f"\nrecovery on {broker}: every domain saved {recovered:.1f} s after the worker was SIGKILLed")
    assert recovered < RECOVERY_GOAL
    store = RedisStore(store_url)
    assert store.list_failed() == []
    wait_for(lambda: store.in_flight(time.time())[0] == 0, timeout=60, message="the ledger empty")
    if broker == "redis":
        assert store.counters().get("lease_resent") == N      # the broker would have waited 2 h


def _held_by(r, pid: int) -> int:
    """Batches held under the lease of the worker process `pid` (its id is host:pid:random)."""
    return sum(1 for w in r.hvals(HOLDERS) if w.decode().split(":")[1] == str(pid))


def _supervised(env: dict, tmp: Path, stage: str) -> Proc:
    argv = [sys.executable, "-m", "scout", "worker", stage]
    return Proc(argv, env, tmp / f"scout-worker-{stage}.log")


def test_redis_restarted_twice_under_load_every_worker_still_consumes(tmp_path, dns_server, procs):
    red = PrivateRedis(tmp_path).start()
    rdap = RdapServer().start()
    rdap.default = ("notfound", {})
    try:
        out = tmp_path / "out"
        env = scout_env(BROKER_URL=red.url, OUTPUT_DIR=out, DNS_SERVER=dns_server,
                        **rdap_bootstrap(tmp_path, rdap.base))
        for stage in ("dns", "whois", "lookup", "save"):
            procs.append(_supervised(env, tmp_path, stage))
        load = subprocess.Popen([sys.executable, "-m", "scout", "produce", "--source",
                                 str(recording(tmp_path / "load.jsonl", [f"l{i}.example.org" for i in range(3000)], 10))],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen = 0
        for _ in range(2):       # each restart while the workers are busy saving
            wait_for(lambda: len(read_documents(out)) > seen + 50, timeout=420, interval=1,
                     message="documents being saved")
            red.restart()
            seen = len(read_documents(out))
        load.wait(180)
        # After the restarts: new names with new roots go through every stage, WHOIS lookups included.
        after = [f"after{i}.r{i}.example" for i in range(40)]
        assert _produce(env, after, tmp_path / "after.jsonl")["enqueued"] == len(after)

        def all_done():
            docs = read_documents(out)
            return all(n in docs and docs[n]["domain_whois_parsed"]["status"] == "not_found" for n in after)

        wait_for(all_done, timeout=420, interval=2, message="every stage consuming after two Redis restarts")
        stats = json.loads(run_scout(["stats", "--json"], env, timeout=60).stdout)
        assert all(n >= 1 for n in stats["consumers"].values()), stats["consumers"]
        assert all(p.proc.poll() is None for p in procs)        # the supervisors still run
    finally:
        rdap.stop()
        red.kill()

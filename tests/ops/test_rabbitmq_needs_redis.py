"""Issue 16, bounded: RabbitMQ (or any broker that is not Redis) without REDIS_URL would give every process
its own in-memory store (no shared de-duplication, WHOIS answers never reaching documents, an empty failed
list): every command refuses with exit 2 and a message naming REDIS_URL."""
from __future__ import annotations

import pytest

from tests.conftest import run_scout, scout_env


@pytest.mark.parametrize("args", [["worker", "dns"], ["produce", "--source", "x.jsonl"], ["stats"], ["failed", "list"]])
def test_amqp_broker_without_redis_url_is_a_configuration_error(args, tmp_path):
    env = scout_env(BROKER_URL="amqp://guest:secret@127.0.0.1:5672//")
    r = run_scout(args, env, cwd=tmp_path, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    assert "REDIS_URL" in r.stderr and "secret" not in r.stderr


def test_redis_broker_alone_is_enough():
    from scout.config import load_settings

    s = load_settings({"BROKER_URL": "redis://127.0.0.1:6379/0"}, None)
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    s = load_settings({"BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//", "REDIS_URL": "redis://127.0.0.1:1/0"}, None)
    assert s.redis_url == "redis://127.0.0.1:1/0"

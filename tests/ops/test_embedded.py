"""`scout run --workers` with a broker: the in-process workers, one per queue group, on Redis."""
from __future__ import annotations

import json

import pytest

from tests.conftest import read_documents, run_scout, scout_env
from tests.ops.test_ops import NAMES, ops_redis, recording  # noqa: F401 - fixtures

WHOIS_STATUSES = ("ok", "not_found")


@pytest.mark.slow
def test_run_with_workers_on_redis_lands_rate_limited_lookups_at_the_default_rates(tmp_path, ops_redis, dns_server,
                                                                                  rdap):
    """Default DOMAIN_WHOIS_RATE / IP_WHOIS_RATE (1 s): every lookup lands. (Workers riding one shared
    kombu event loop ran one rate-limited lookup a minute and the run gave up.)"""
    out = tmp_path / "out"
    env = scout_env(BROKER_URL=ops_redis, OUTPUT_DIR=out, DNS_SERVER=dns_server, **rdap.env)
    for var in ("DOMAIN_WHOIS_RATE", "IP_WHOIS_RATE"):
        env.pop(var)
    rdap.route("/domain/example.org", "domain")
    r = run_scout(["run", "--workers", "--stall-timeout", "60", "--source",
                   str(recording(tmp_path / "r.jsonl", NAMES))], env, timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["saved"] == len(NAMES) and summary["whois_lookups"] >= len(NAMES)
    docs = read_documents(out)
    assert set(docs) == set(NAMES)
    assert {n: docs[n]["domain_whois_parsed"]["status"] in WHOIS_STATUSES for n in NAMES} == dict.fromkeys(NAMES, True)
    assert docs["portal.example.org"]["domain_whois_parsed"]["status"] == "ok"

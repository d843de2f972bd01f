"""Test processes run with a clean, explicit environment: a developer's .env in the checkout and exported
scout variables (WHOIS_IPS, SINK, NATS_URL, BROKER_URL, ...) change nothing a test does."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_scout, scout_env

# What a developer may have exported or written into .env: each would change or break a test run.
HOSTILE = {"WHOIS_IPS": "203.0.113.7", "SINK": "nats", "NATS_URL": "nats://127.0.0.1:1",
           "BROKER_URL": "redis://127.0.0.1:1/0", "REDIS_URL": "redis://127.0.0.1:1/0",
           "DNS_SERVER": "192.0.2.1:53", "OUTPUT_DIR": "/nonexistent/hostile-output",
           "WATCHLIST_FILE": "/nonexistent/hostile-watchlist.yaml", "ALERT_MIN_SCORE": "1"}
DOTENV_ONLY = {"CACHE_TTL": "1s", "CERTSTREAM_URL": "ws://127.0.0.1:1/hostile"}

SHOW_SETTINGS = ("import dataclasses, json; from scout.config import get_settings; "
                 "print(json.dumps(dataclasses.asdict(get_settings()), default=str))")


@pytest.fixture
def hostile(monkeypatch):
    """Exported hostile variables and a hostile .env at the root of the checkout (restored after)."""
    dotenv = ROOT / ".env"
    saved = dotenv.read_bytes() if dotenv.exists() else None
    dotenv.write_text("# Written by tests/test_environment.py for one test and removed after it: if you see\n"
                      "# this file, that test was killed; delete it.\n"
                      + "".join(f"{k}={v}\n" for k, v in {**HOSTILE, **DOTENV_ONLY}.items()))
    for k, v in HOSTILE.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    try:
        yield
    finally:
        if saved is None:
            dotenv.unlink()
        else:
            dotenv.write_bytes(saved)


def settings_in_child(env: dict, cwd) -> dict:
    r = subprocess.run([sys.executable, "-c", SHOW_SETTINGS], env=env, cwd=str(cwd), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def defaults_with(**changes) -> dict:
    from scout.config import load_settings

    return json.loads(json.dumps(dataclasses.asdict(load_settings({k: str(v) for k, v in changes.items()}, None)),
                                 default=str))


def test_the_hostile_setup_does_reach_a_process_that_inherits_everything(hostile):
    """Without scout_env the hostility is real: the check below can fail."""
    seen = settings_in_child(dict(os.environ, PYTHONPATH=str(ROOT), SCOUT_ENV_FILE=".env"), ROOT)
    assert seen["whois_ips"] == ["203.0.113.7"] and seen["sink"] == "nats"
    assert seen["cache_ttl"] == 1.0 and seen["certstream_url"] == DOTENV_ONLY["CERTSTREAM_URL"]


@pytest.mark.parametrize("cwd", ["temp", "checkout"])
def test_exported_variables_and_the_checkouts_env_do_not_reach_a_test_subprocess(hostile, tmp_path, cwd):
    env = scout_env(DNS_SERVER="127.0.0.1:5300")
    assert not set(HOSTILE) & set(env) - {"DNS_SERVER"} and "http_proxy" not in env
    seen = settings_in_child(env, tmp_path if cwd == "temp" else ROOT)
    assert seen == defaults_with(**{k: v for k, v in env.items() if k not in ("PATH", "HOME")})
    assert seen["whois_ips"] == [] and seen["sink"] == "celery" and seen["cache_ttl"] != 1.0


def test_a_command_runs_as_the_test_says_not_as_the_developer_configured(hostile):
    """`scout score` reads WATCHLIST_FILE and ALERT_MIN_SCORE: the hostile ones would fail it or flag
    every name; the test run sees the bundled list and the default threshold."""
    r = run_scout(["score", "--json", "secure-shop.com"], scout_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[0])
    assert 1 < out["score"] < 50 and out["alert"] is False, out


def test_the_test_process_itself_forgot_the_developers_settings():
    from scout.config import ENV_VARS, load_settings

    assert not set(ENV_VARS) & set(os.environ)
    assert os.environ["SCOUT_ENV_FILE"] == ""
    assert load_settings() == load_settings({}, None)

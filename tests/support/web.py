"""Helpers for the web page's tests: a store filled by a real pipeline run, a `scout web` process, a
headless Chromium driven by Selenium, and a check that a screenshot is not blank."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import FIXTURE, ROOT, free_port, run_scout, scout_env, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# WHOIS texts are hostile input: the registrar name and statuses one RDAP answer carries.
XSS_REGISTRAR = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">Evil & Co'
XSS_DOMAIN = "hosting-demo.example"
REGISTRAR = "RESERVED-Internet Assigned Numbers Authority"  # tests/servers/rdap.py


def rdap_answers(server) -> None:
    """Every domain answers as a registry would (registrar, dates, two name servers); hosting-demo.example's
    answer carries markup in its registrar name and a status."""
    from tests.servers.rdap import registry_domain

    server.default = ("domain", {})
    hostile = registry_domain(XSS_DOMAIN, server.base + "domain/" + XSS_DOMAIN, None)
    hostile["entities"][0]["vcardArray"][1][1][3] = XSS_REGISTRAR
    hostile["status"].append('"><script>window.__xss=3</script>')
    server.route("/domain/" + XSS_DOMAIN, "json", obj=hostile)


def fill_store(tmp: Path, dns_server: str, rdap_env: dict) -> tuple[str, Path, dict]:
    """`scout run --source` on the recorded fixture with nsd and local RDAP -> (STORE_URL, OUTPUT_DIR,
    the documents the store holds, by domain: what the page must show)."""
    out = tmp / "out"
    url = f"sqlite:///{out / 'scout.db'}"
    env = scout_env(DNS_SERVER=dns_server, OUTPUT_DIR=out, STORE_URL=url, ALERT_MIN_SCORE=50, **rdap_env)
    r = run_scout(["run", "--source", str(FIXTURE)], env, timeout=300, cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    docs = {}
    for path in out.rglob("*.json"):
        doc = json.loads(path.read_text())
        docs[doc["domain"]] = doc
    assert (out / "scout.db").exists(), "scout run wrote no store"
    from scout.db import Filters, open_store, search

    store = open_store(url)
    stored = {d["domain"]: d for d in search(store, Filters(limit=100_000))}
    store.close()
    assert set(stored) == set(docs) and len(docs) > 40
    stale = sorted(n for n in docs if stored[n] != docs[n])
    assert not stale, f"rows that differ from their files: {stale}"
    return url, out, stored


class WebServer:
    """`scout web` as a subprocess on a free loopback port."""

    def __init__(self, tmp: Path, store_url: str, **env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"web-{self.port}.log"
        self.env = scout_env(STORE_URL=store_url, **env)
        self.proc = None

    def start(self, *extra: str) -> "WebServer":
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "scout", "web", "--port", str(self.port), *extra],
                                         env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=60, message=f"scout web on {self.base}")
        return self

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"scout web exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return get(self.base + "/healthz")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def get(url: str, auth: tuple[str, str] | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a plain GET (urllib: no cookies, no JavaScript)."""
    req = urllib.request.Request(url)
    if auth:
        import base64

        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str, **kw):
    status, _, body = get(url, **kw)
    return status, json.loads(body)


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


def browser(width: int = 1280, height: int = 1000):
    """Debian's headless Chromium through its chromedriver (no download, no network)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    return driver


def distinct_colours(png: bytes) -> int:
    """How many distinct colours a screenshot holds (a blank page has one or two)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    return len(img.getcolors(maxcolors=1 << 24) or [])


def copy_screenshot(png: bytes, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(png)
    shutil.move(tmp, dest)


__all__ = ["REGISTRAR", "XSS_DOMAIN", "XSS_REGISTRAR", "WebServer", "browser", "chromium_available",
           "copy_screenshot", "distinct_colours", "fill_store", "get", "get_json", "rdap_answers", "time"]

"""Issue 17 end to end: a real pipeline run (`scout run` over the fixture: nsd, local RDAP) fills the
store; `scout query` asks it in every format; `scout import` of the files gives the same rows as the
store (and again: idempotent); OUTPUT_FILES=false keeps documents in PostgreSQL only; `scout prune`
deletes from the store."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from scout import db
from tests.conftest import FIXTURE, read_documents, run_scout, scout_env
from tests.support.stores import pg_databases  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def local_rdap(tmp_path_factory):
    """RDAP bootstrap whose every service is a local server that answers not_found."""
    from tests.servers.rdap import RdapServer, rdap_bootstrap

    server = RdapServer().start()
    yield rdap_bootstrap(tmp_path_factory.mktemp("rdap"), server.base)
    server.stop()


def store_rows(url: str) -> dict:
    store = db.open_store(url)
    try:
        return {d["domain"]: d for d in db.search(store, db.Filters(limit=10_000))}
    finally:
        store.close()


def query(env, cwd, *args) -> str:
    r = run_scout(["query", *args], env, timeout=120, cwd=cwd)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_run_fills_the_embedded_store_and_query_and_import_agree(tmp_path, dns_server, local_rdap, pg_databases):
    out = tmp_path / "out"
    env = scout_env(DNS_SERVER=dns_server, OUTPUT_DIR=out, ALERT_MIN_SCORE=0, **local_rdap)
    r = run_scout(["run", "--source", str(FIXTURE)], env, timeout=240, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    files = read_documents(out)
    sqlite_url = f"sqlite:///{out / 'scout.db'}"
    assert files and store_rows(sqlite_url) == files      # the default store: OUTPUT_DIR/scout.db

    # `scout query` finds OUTPUT_DIR/scout.db without STORE_URL
    ip = "198.51.100.33"
    on_ip = {n for n, d in files.items() if ip in d["a_records"]}
    assert len(on_ip) >= 2
    assert {d["domain"] for d in json.loads(query(env, tmp_path, "--ip", ip, "--format", "json"))} == on_ip
    as_json = json.loads(query(env, tmp_path, "--root", "shop-example-login.example", "--format", "json"))
    assert as_json and all(d == files[d["domain"]] for d in as_json)           # full documents
    assert list(as_json[0]) == list(files[as_json[0]["domain"]])               # in the files' field order
    lines = query(env, tmp_path, "--ip", "198.51.100.0/24", "--format", "jsonl", "--limit", "1000").splitlines()
    assert {json.loads(x)["domain"] for x in lines} == {n for n, d in files.items()
                                                        if any(a.startswith("198.51.100.") for a in d["a_records"])}
    table = list(csv.DictReader(io.StringIO(query(env, tmp_path, "--domain", "*.example", "--format", "csv",
                                                  "--limit", "1000"))))
    assert {row["domain"] for row in table} == {n for n in files if n.endswith(".example")}
    assert table[0]["first_seen"] and "whois_status" in table[0]
    text = query(env, tmp_path, "--ip", ip)
    assert text.splitlines()[0].split()[:2] == ["domain", "first_seen"] and all(n in text for n in on_ip)
    assert query(env, tmp_path, "--count").strip() == str(len(files))

    # `scout import` of the files into PostgreSQL: the same rows, and again: nothing changes
    pg_url = pg_databases.create()
    for attempt in range(2):
        r = run_scout(["import", str(out)], scout_env(STORE_URL=pg_url), timeout=120, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        counts = json.loads(r.stdout)
        assert counts == {"read": len(files), "skipped": 0, "written": len(files) if attempt == 0 else 0}
        assert store_rows(pg_url) == store_rows(sqlite_url)

    # prune: everything was last seen before now + 0s
    r = run_scout(["prune", "--older-than", "0s"], scout_env(STORE_URL=pg_url), timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["store_deleted"] == len(files)
    assert store_rows(pg_url) == {}


def test_store_only_into_postgresql(tmp_path, dns_server, local_rdap, pg_databases):
    out, pg_url = tmp_path / "out", pg_databases.create()
    env = scout_env(DNS_SERVER=dns_server, OUTPUT_DIR=out, ALERT_MIN_SCORE=0, STORE_URL=pg_url,
                    OUTPUT_FILES="false", **local_rdap)
    r = run_scout(["run", "--source", str(FIXTURE)], env, timeout=240, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    rows = store_rows(pg_url)
    assert len(rows) == summary["saved"] == summary["unique"] > 0
    assert not list(Path(out).rglob("*.json"))            # no document files
    assert {d["domain_whois_parsed"]["status"] for d in rows.values()} == {"not_found"}   # WHOIS landed
    on_ip = json.loads(query(env, tmp_path, "--ip", "203.0.113.42", "--format", "json"))
    assert {d["domain"] for d in on_ip} == {n for n, d in rows.items() if "203.0.113.42" in d["a_records"]} != set()


def test_no_store_exits_2_naming_store_url(tmp_path):
    env = scout_env(OUTPUT_DIR=tmp_path / "empty")
    r = run_scout(["query", "--since", "1h"], env, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "STORE_URL" in r.stderr
    r = run_scout(["query", "--since", "soon"], scout_env(STORE_URL=f"sqlite:///{tmp_path}/s.db"), timeout=60,
                  cwd=tmp_path)
    assert r.returncode == 2 and "since=" in r.stderr
    r = run_scout(["run", "--source", str(FIXTURE)], scout_env(OUTPUT_FILES="false", STORE_URL="none"),
                  timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "STORE_URL" in r.stderr
    r = run_scout(["query"], scout_env(STORE_URL="mysql://x@y/z"), timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "STORE_URL" in r.stderr

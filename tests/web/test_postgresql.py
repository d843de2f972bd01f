"""The same page over PostgreSQL: the pipeline run's stored documents copied into a PostgreSQL database of
this test run; every API filter answers there as it does over SQLite, and the HTML escapes the same."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.support.stores import pg_databases  # noqa: F401 (fixture)
from tests.support.web import XSS_DOMAIN, XSS_REGISTRAR, WebServer, get, get_json

QUERIES = ["ip=198.51.100.33", "ip=198.51.100.0/24", "ip=2001:db8::/32", "domain=*.example.com",
           "domain=" + quote("*login*"), "root=hosting-demo.example", "registrar=evil", "ns=a.iana-servers.net",
           "min_score=50", "since=1h", "until=1h", "whois_status=ok", "registered_within=7d",
           "ip=198.51.100.0/24&min_score=20"]


@pytest.fixture(scope="module")
def pg_web(filled_store, pg_databases, tmp_path_factory):  # noqa: F811
    from scout import db

    _, _, docs = filled_store
    url = pg_databases.create()
    store = db.open_store(url)
    db.upsert_documents(store, list(docs.values()))
    store.close()
    server = WebServer(tmp_path_factory.mktemp("pg-web"), url).start()
    yield server
    server.stop()


@pytest.mark.parametrize("query", QUERIES)
def test_every_filter_answers_alike_on_both_engines(web, pg_web, query):
    found = {}
    for name, server in (("sqlite", web), ("postgresql", pg_web)):
        status, body = get_json(f"{server.base}/api/domains?{query}&limit=500")
        assert status == 200, (name, body)
        found[name] = (body["count"], sorted(d["domain"] for d in body["domains"]))
    assert found["sqlite"] == found["postgresql"]


def test_pages_and_neighbours_on_postgresql(web, pg_web, filled_store):
    _, _, docs = filled_store
    hostile = next(n for n, d in docs.items() if d["domain_whois_parsed"].get("registrar") == XSS_REGISTRAR)
    for server in (web, pg_web):
        assert get_json(f"{server.base}/api/domains/{hostile}")[1] == docs[hostile]
        status, _, html = get(f"{server.base}/domain/{hostile}")
        assert status == 200
        assert b"&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=" in html
        assert b"<script" not in html and b"<img" not in html
    rel = [get_json(f"{s.base}/api/domains/{XSS_DOMAIN}/related")[1] for s in (web, pg_web)]
    assert rel[0] == rel[1] and rel[0]["ip"]["198.51.100.33"] == ["mail.hosting-demo.example"]
    over = [get_json(f"{s.base}/api/overview")[1]["store"] for s in (web, pg_web)]
    assert over[0]["domains"] == over[1]["domains"] == len(docs)
    assert sorted(h["domain"] for h in over[0]["hits"]) == sorted(h["domain"] for h in over[1]["hits"])

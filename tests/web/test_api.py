"""The JSON API (/api/) with a plain HTTP client, over a store filled by a real pipeline run."""
from __future__ import annotations

from urllib.parse import quote

from tests.support.web import REGISTRAR, XSS_DOMAIN, get, get_json


def test_domains_by_ip_match_the_documents(web, filled_store):
    _, _, docs = filled_store
    ip = "198.51.100.33"
    expected = {n for n, d in docs.items() if ip in d["a_records"]}
    assert expected == {"hosting-demo.example", "mail.hosting-demo.example"}
    status, body = get_json(f"{web.base}/api/domains?ip={ip}&since=7d")
    assert status == 200
    assert body["count"] == 2 and {d["domain"] for d in body["domains"]} == expected
    assert body["domains"][0] == docs[body["domains"][0]["domain"]]   # the whole document, as the file has it


def test_cidr_glob_and_paging(web, filled_store):
    _, _, docs = filled_store
    expected = {n for n, d in docs.items() if any(a.startswith("198.51.100.") for a in d["a_records"])}
    seen, url, pages = [], f"{web.base}/api/domains?ip=198.51.100.0/24&limit=3", 0
    while url:
        status, body = get_json(url)
        assert status == 200 and body["count"] == len(expected)
        assert len(body["domains"]) <= 3
        seen += [d["domain"] for d in body["domains"]]
        url = web.base + body["next"] if body["next"] else None
        pages += 1
    assert sorted(seen) == sorted(expected) and pages == -(-len(expected) // 3)
    status, body = get_json(f"{web.base}/api/domains?domain=*.example.com&limit=500")
    assert {d["domain"] for d in body["domains"]} == {n for n in docs if n.endswith(".example.com")}


def test_registrar_ns_and_score_filters(web, filled_store):
    _, _, docs = filled_store
    status, body = get_json(f"{web.base}/api/domains?registrar={quote('evil & co')}")
    assert status == 200 and {d["root_domain"] for d in body["domains"]} == {XSS_DOMAIN}
    status, body = get_json(f"{web.base}/api/domains?registrar={quote(REGISTRAR.lower())}&limit=500")
    assert body["count"] == sum(1 for d in docs.values()
                                if (d["domain_whois_parsed"].get("registrar") or "") == REGISTRAR)
    status, body = get_json(f"{web.base}/api/domains?ns=a.iana-servers.net&limit=500")
    assert body["count"] == sum(1 for d in docs.values()
                                if "a.iana-servers.net" in (d["domain_whois_parsed"].get("nameservers") or []))
    assert body["count"] > 20
    high = {n for n, d in docs.items() if d.get("score", 0) >= 50}
    status, body = get_json(f"{web.base}/api/domains?min_score=50&limit=500")
    assert high and {d["domain"] for d in body["domains"]} == high


def test_one_domain_and_its_neighbours(web, filled_store):
    _, _, docs = filled_store
    status, body = get_json(f"{web.base}/api/domains/mail.hosting-demo.example")
    assert status == 200 and body == docs["mail.hosting-demo.example"]
    status, rel = get_json(f"{web.base}/api/domains/mail.hosting-demo.example/related")
    assert status == 200
    assert rel["ip"] == {"198.51.100.33": ["hosting-demo.example"]}
    assert rel["registered_domain"] == sorted(n for n, d in docs.items() if d["root_domain"] == "hosting-demo.example"
                                              and n != "mail.hosting-demo.example")
    assert "hosting-demo.example" in rel["registered_domain"]
    status, body = get_json(f"{web.base}/api/domains/not-there.example")
    assert status == 404 and "not-there.example" in body["error"]


def test_a_bad_filter_is_400_naming_it(web):
    for query, name in (("ip=not-an-ip", "ip"), ("since=yesterday", "since"), ("asn=AS-x", "asn"),
                        ("limit=0", "limit"), ("registered_within=soon", "registered_within")):
        status, body = get_json(f"{web.base}/api/domains?{query}")
        assert status == 400 and body["error"].startswith(name + "="), (query, body)


def test_overview_figures(web, filled_store):
    _, _, docs = filled_store
    status, body = get_json(f"{web.base}/api/overview")
    assert status == 200
    assert body["store"]["domains"] == len(docs)
    assert body["store"]["last_hour"] == len(docs)     # the run just happened
    assert {d["domain"] for d in body["store"]["hits"]} == {n for n, d in docs.items() if d.get("score", 0) >= 50}
    assert body["pipeline"] == {"local": True}        # no broker, no Redis: an embedded run's own business


def test_pages_answer_with_security_headers(web):
    for path in ("/", "/search?ip=198.51.100.33", "/domain/hosting-demo.example", "/api/domains"):
        status, headers, _ = get(web.base + path)
        assert status == 200, path
        assert "script-src" not in headers["content-security-policy"]      # default-src 'none' forbids it
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["x-content-type-options"] == "nosniff"


def test_a_hostile_name_in_the_url_is_escaped(web):
    evil = quote('<img src=x onerror=alert(1)>"x', safe="")
    status, _, body = get(f"{web.base}/domain/{evil}")
    assert status == 404 and b"&lt;img src=x onerror=alert(1)&gt;&#34;x" in body and b"<img" not in body
    status, _, body = get(f"{web.base}/search?domain={evil}&registrar={evil}")
    assert status == 200 and b"<img" not in body and b'value="&lt;img src=x onerror=alert(1)&gt;&#34;x"' in body
    status, headers, raw = get(f"{web.base}/api/domains/{evil}")
    assert status == 404 and headers["content-type"] == "application/json"   # never sniffed as HTML

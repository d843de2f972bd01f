"""`scout web` latency: each search filter through the JSON API and the HTML search page, a domain page,
and the overview, against the same store work done in-process (db.count + db.search, get_document +
related, overview) as the baseline. The ratio is what HTTP, JSON/HTML rendering and the thread hop add.

    python -m bench --only web [--quick]      or      python -m bench.web_bench --docs 20000
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERIES = {
    "ip": "ip=198.18.3.7", "cidr /24": "ip=198.18.3.0/24", "domain glob": "domain=d12*", "root": "root=r77.example",
    "ns": "ns=ns17.dns-host.example", "registrar": "registrar=registrar%2023", "min_score": "min_score=95",
    "since 1h": "since=1h", "whois_status": "whois_status=ok", "ip + min_score": "ip=198.18.0.0/16&min_score=90",
}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def documents(n: int, seed: int = 7) -> list[dict]:
    """n documents shaped as the save stage writes them: 5 per root, 2 of 8,192 addresses each, 200 name
    servers, 50 registrars, first_seen over the last 7 days."""
    rnd = random.Random(seed)
    now = datetime.now(timezone.utc)
    out = []
    for i in range(n):
        root = f"r{i // 5}.example"
        ips = sorted({f"198.18.{rnd.randrange(32)}.{rnd.randrange(256)}" for _ in range(2)})
        first = now - timedelta(seconds=rnd.randrange(7 * 86400))
        ns = [f"ns{rnd.randrange(200)}.dns-host.example", f"ns{rnd.randrange(200)}.dns-host.example"]
        out.append({
            "domain": f"d{i}.{root}", "root_domain": root, "a_records": ips, "aaaa_records": [], "mx_records": [],
            "txt_records": [], "caa_records": [], "soa_record": "", "domain_whois": "", "ip_whois": {},
            "timestamp": iso(first), "dns_status": {"A": "NOERROR"}, "cname_chain": [], "first_seen": iso(first),
            "last_seen": iso(first), "seen_count": 1,
            "certificate": {"sha256": "AB:CD", "issuer": "Bench CA", "not_before": iso(first), "not_after": iso(first),
                            "log_name": "bench", "cert_index": i, "type": "precert"},
            "domain_whois_parsed": {"status": "ok", "registrar": f"Registrar {rnd.randrange(50)}",
                                    "created": iso(first - timedelta(days=rnd.randrange(30))), "nameservers": ns},
            "ip_info": {ip: {"status": "ok", "asn": str(64500 + rnd.randrange(20)), "network_cidr": ip + "/32",
                             "country": "ZZ"} for ip in ips},
            "score": rnd.randrange(100), "matches": [],
        })
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return round(statistics.median(s) * 1000, 2), round(s[min(len(s) - 1, int(len(s) * 0.95))] * 1000, 2)


def timed(fn, rounds: int) -> list[float]:
    fn()   # warm: caches, first connection
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def start_web(url: str, tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {"STORE_URL": url, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "scout", "web", "--port", str(port)], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "web.log", "wb"))
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("scout web did not start: " + (tmp / "web.log").read_text()[-2000:])


def bench_web(n_docs: int = 20_000, rounds: int = 30) -> dict:
    from scout import db

    tmp = Path(tempfile.mkdtemp(prefix="scout-web-bench-"))
    url = f"sqlite:///{tmp / 'scout.db'}"
    store = db.open_store(url)
    docs = documents(n_docs)
    for i in range(0, len(docs), 1000):
        db.upsert_documents(store, docs[i:i + 1000])
    proc, port = start_web(url, tmp)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(path: str) -> bytes:
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            conn.close()   # uvicorn closes a connection idle for 5 s (while the baseline ran): open another
            conn.request("GET", path)
            resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (path, resp.status, body[:200])
        return body

    rows: dict = {}
    try:
        for name, q in QUERIES.items():
            f = db.Filters.from_query(dict(p.split("=", 1) for p in q.replace("%20", " ").split("&")))
            base = timed(lambda: (db.count(store, f), db.search(store, f)), rounds)
            api = timed(lambda: json.loads(get("/api/domains?" + q)), rounds)
            page = timed(lambda: get("/search?" + q), rounds)
            rows[name] = {"baseline": percentiles(base), "api": percentiles(api), "page": percentiles(page),
                          "count": db.count(store, f)}
        name = docs[len(docs) // 2]["domain"]
        rows["domain (JSON)"] = {"baseline": percentiles(timed(lambda: db.get_document(store, name), rounds)),
                                 "api": percentiles(timed(lambda: get(f"/api/domains/{name}"), rounds)),
                                 "page": None, "count": 1}
        # The page and /related both read the document and its neighbours.
        rows["domain page"] = {"baseline": percentiles(timed(lambda: (db.get_document(store, name),
                                                                      db.related(store, name)), rounds)),
                               "api": percentiles(timed(lambda: get(f"/api/domains/{name}/related"), rounds)),
                               "page": percentiles(timed(lambda: get(f"/domain/{name}"), rounds)), "count": 1}
        minute = db.Filters.from_query({"since": "60s"})
        rows["overview"] = {"baseline": percentiles(timed(lambda: (db.overview(store), db.count(store, minute)),
                                                          rounds)),
                            "api": percentiles(timed(lambda: get("/api/overview"), rounds)),
                            "page": percentiles(timed(lambda: get("/"), rounds)), "count": None}
    finally:
        conn.close()
        proc.terminate()
        proc.wait(30)
        store.close()
    worst_page = max(r["page"][1] for r in rows.values() if r["page"])
    return {"web_docs": n_docs, "web_rounds": rounds, "web_latency_ms": rows,
            "web_page_p95_ms_worst": worst_page,
            "web_api_overhead_ms_p50": round(statistics.median(r["api"][0] - r["baseline"][0] for r in rows.values()), 2),
            "web_api_over_baseline_p50": round(statistics.median(r["api"][0] / max(r["baseline"][0], 0.01)
                                                                 for r in rows.values()), 2)}


def print_web(fig: dict) -> None:
    print(f"\nscout web on {fig['web_docs']:,} documents (SQLite), {fig['web_rounds']} requests each, ms p50 / p95")
    print(f"{'request':<16}{'matches':>9}{'store alone':>16}{'JSON API':>16}{'HTML page':>16}{'API/base p50':>14}")
    for name, r in fig["web_latency_ms"].items():
        cell = lambda p: f"{p[0]:>7} / {p[1]:<6}" if p else "-"  # noqa: E731
        ratio = round(r["api"][0] / max(r["baseline"][0], 0.01), 2)
        print(f"{name:<16}{'' if r['count'] is None else r['count']:>9}{cell(r['baseline']):>16}"
              f"{cell(r['api']):>16}{cell(r['page']):>16}{ratio:>14}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.web_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    fig = bench_web(args.docs, args.rounds)
    print_web(fig)
    print(json.dumps(fig, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

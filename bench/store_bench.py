"""The SQL store (issue 17): upsert rate into PostgreSQL and SQLite (batches of 100 through
scout.db.upsert_documents with the save stage's merge rule) against a plain executemany INSERT of the
same rows in the same run; query latency p50/p95 of every `scout query` filter on a store of 1 M domains
(filled with COPY on PostgreSQL, executemany in one transaction on SQLite); store size per million.

PostgreSQL: SCOUT_BENCH_PG (default postgresql://postgres:postgres@127.0.0.1:5432/postgres) is the
maintenance connection; the benchmark creates databases of its own and drops them.
"""
from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ADMIN_URL = os.environ.get("SCOUT_BENCH_PG", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
BATCH = 100
REGISTRARS = ["GoDaddy.com, LLC", "NameCheap, Inc.", "Tucows Domains Inc.", "Google LLC", "Cloudflare, Inc.",
              "Network Solutions, LLC", "PDR Ltd. d/b/a PublicDomainRegistry.com", "Hostinger Operations, UAB",
              "Gandi SAS", "OVH sas"] + [f"Registrar Number {i} Ltd" for i in range(490)]
WORDS = ["shop", "login", "secure", "mail", "cloud", "app", "pay", "bank", "verify", "account", "portal", "web",
         "dev", "api", "cdn", "news", "store", "help", "support", "auth"]
TLDS = ["com", "net", "org", "io", "xyz", "shop", "online", "de", "co.uk", "info"]


class World:
    """A deterministic population of documents with realistic selectivity: 1 domain in 5 a root, a few
    hundred thousand addresses in /24 networks of a few thousand ASNs, two name servers each, registrars
    by a Zipf-like law, 1 % scoring >= 50, 5 % registered within a week of their certificate."""

    def __init__(self, n: int, now: datetime, seed: int = 17):
        self.n, self.now, self.rng = n, now, random.Random(seed)
        self.n_roots = max(1, n // 5)
        self.n_nets = max(1, n // 12)
        self.n_asns = max(1, self.n_nets // 20)
        self.n_ns = max(1, n // 50)
        self.reg_weights = [1 / (k + 1) ** 1.1 for k in range(len(REGISTRARS))]

    def root(self, r: int) -> str:
        return f"{WORDS[r % 20]}{WORDS[(r // 20) % 20]}{r}.{TLDS[r % len(TLDS)]}"

    def net(self, k: int) -> str:
        return f"{10 + k // 65536}.{(k // 256) % 256}.{k % 256}"

    def doc(self, i: int, seen: datetime | None = None) -> dict:
        rng = random.Random(i * 7919 + 1)
        r = i % self.n_roots
        root = self.root(r)
        domain = root if i < self.n_roots else f"{WORDS[i % 20]}-{i}.{root}"
        first = seen or self.now - timedelta(seconds=rng.random() * 30 * 86400)
        ips = [f"{self.net(rng.randrange(self.n_nets))}.{rng.randrange(1, 255)}" for _ in range(rng.choice((1, 1, 2)))]
        status = rng.choices(["ok", "not_found", "pending", "skipped_backlog", "error: timeout"], [60, 10, 20, 5, 5])[0]
        reg = rng.choices(REGISTRARS, self.reg_weights)[0] if status == "ok" else None
        created = (first - timedelta(days=rng.random() * 7) if rng.random() < 0.05
                   else first - timedelta(days=30 + rng.random() * 3000)) if status == "ok" else None
        score = rng.randint(50, 120) if rng.random() < 0.01 else rng.randint(0, 30)
        iso = _iso(first)
        return {
            "domain": domain, "root_domain": root, "a_records": ips, "aaaa_records": [], "mx_records": [],
            "txt_records": ["v=spf1 -all"], "caa_records": [], "soa_record": f"ns1.{root}. hostmaster.{root}. 1 2 3 4 5",
            "domain_whois": "", "ip_whois": {ip: "" for ip in ips}, "timestamp": iso, "dns_status": {"A": "ok"},
            "cname_chain": [], "first_seen": iso, "last_seen": iso, "seen_count": 1,
            "certificate": {"sha256": f"{i:064X}", "issuer": "R11", "not_before": iso, "not_after": iso,
                            "log_name": "Argon 2026", "cert_index": i, "type": "precert"},
            "domain_whois_parsed": {"status": status, "registrar": reg, "created": _iso(created) if created else None,
                                    "expires": None, "source": "rdap",
                                    "nameservers": [f"ns{k}.dns{(r * 2 + k) % self.n_ns}.net" for k in (1, 2)]},
            "ip_info": {ip: {"status": "ok", "asn": str(64512 + (self._net_index(ip) % self.n_asns)),
                             "network_cidr": ip.rsplit(".", 1)[0] + ".0/24", "country": "US"} for ip in ips},
            "score": score, "matches": [],
        }

    @staticmethod
    def _net_index(ip: str) -> int:
        a, b, c, _ = (int(x) for x in ip.split("."))
        return (a - 10) * 65536 + b * 256 + c


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# ------------------------------------------------------------------ databases

def pg_create() -> str:
    import psycopg

    name = f"scout_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def pg_drop(url: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def store_size(store) -> int:
    from sqlalchemy import text

    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            return conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
    path = Path(store.engine.url.database)   # the file and its write-ahead log
    return sum(p.stat().st_size for p in (path, Path(str(path) + "-wal")) if p.exists())


# ------------------------------------------------------------------ upserts

def bench_upsert(url: str, n: int, now: datetime) -> dict:
    """docs/s: new domains, then the same domains seen again (the update path), through upsert_documents
    with the files' merge rule; baseline: executemany INSERT of the same rows in a fresh database."""
    from scout import db
    from scout.stages.document import merge_documents

    world = World(n, now)
    docs = [world.doc(i) for i in range(n)]
    again = [world.doc(i, seen=now) for i in range(n)]
    store = db.open_store(url, fsync=False)   # the save stage's default (SAVE_FSYNC=false)
    out = {}
    try:
        for label, batch_docs in (("new", docs), ("seen_again", again)):
            t = time.perf_counter()
            for k in range(0, n, BATCH):
                db.upsert_documents(store, batch_docs[k:k + BATCH], merge=merge_documents)
            out[label] = n / (time.perf_counter() - t)
        out["count_ok"] = db.count(store, db.Filters()) == n and all(
            d["seen_count"] == 2 for d in db.search(store, db.Filters(limit=100)))
    finally:
        store.close()
    return out


def bench_upsert_writers(url: str, n: int, now: datetime, writers: int = 4) -> float:
    """docs/s of `writers` threads upserting their own batches at once (a save worker runs 8 threads,
    a fleet several workers): new domains, the same merge rule."""
    from concurrent.futures import ThreadPoolExecutor

    from scout import db
    from scout.stages.document import merge_documents

    world = World(n, now)
    batches = [[world.doc(i) for i in range(k, min(n, k + BATCH))] for k in range(0, n, BATCH)]
    store = db.open_store(url, fsync=False)
    try:
        t = time.perf_counter()
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(lambda b: db.upsert_documents(store, b, merge=merge_documents), batches))
        return n / (time.perf_counter() - t)
    finally:
        store.close()


def bench_insert_baseline(url: str, n: int, now: datetime) -> float:
    """A plain executemany INSERT of the same rows (domains, addresses, name servers), batch of 100 per
    transaction: no read, no merge, no conflict handling, no lock."""
    from scout import db
    from scout.db.rows import address_rows, domain_row, nameserver_rows
    from scout.db.schema import addresses, documents, domains, nameservers

    world = World(n, now)
    docs = [world.doc(i) for i in range(n)]
    store = db.open_store(url, fsync=False)   # the same commit setting as the upserts
    try:
        t = time.perf_counter()
        for k in range(0, n, BATCH):
            part = docs[k:k + BATCH]
            with store.engine.begin() as conn:
                conn.execute(domains.insert(), [domain_row(d) for d in part])
                conn.execute(documents.insert(), [{"domain": d["domain"], "document": d} for d in part])
                conn.execute(addresses.insert(), [r for d in part for r in address_rows(d)])
                conn.execute(nameservers.insert(), [r for d in part for r in nameserver_rows(d)])
        return n / (time.perf_counter() - t)
    finally:
        store.close()


# ------------------------------------------------------------------ a store of n domains

def fill(store, world: World, chunk: int = 20_000) -> float:
    """n documents into an empty store, indexes dropped and built again after (COPY on PostgreSQL). -> s."""
    from scout.db import migrations
    from scout.db.engine import pg_json_dumps
    from scout.db.rows import address_rows, domain_row, nameserver_rows
    from scout.db.schema import addresses, documents, domains, nameservers

    t = time.perf_counter()
    tables = (domains, documents, addresses, nameservers)
    with store.engine.begin() as conn:
        for table in tables:
            for idx in table.indexes:
                idx.drop(conn)
        if store.dialect == "postgresql":
            conn.exec_driver_sql("DROP INDEX IF EXISTS ix_domains_registrar_trgm, ix_domains_domain_trgm")
        for k in range(0, world.n, chunk):
            docs = [world.doc(i) for i in range(k, min(world.n, k + chunk))]
            rows = {domains: [domain_row(d) for d in docs], documents: [{"domain": d["domain"], "document": d} for d in docs],
                    addresses: [r for d in docs for r in address_rows(d)],
                    nameservers: [r for d in docs for r in nameserver_rows(d)]}
            if store.dialect == "postgresql":
                cur = conn.connection.driver_connection.cursor()
                for table, table_rows in rows.items():
                    cols = [c.name for c in table.c]
                    with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in table_rows:
                            copy.write_row([pg_json_dumps(row[c]) if c == "document" else row[c] for c in cols])
            else:
                for table, table_rows in rows.items():
                    conn.execute(table.insert(), table_rows)
        for table in tables:
            for idx in table.indexes:
                idx.create(conn)
        migrations._v2_substring_indexes(conn)
        migrations._v4_narrow_lookups(conn)   # registrar names; drops the registrar's trigram index
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # as autovacuum leaves a table in steady state: statistics, and the visibility map that lets
        # lookups read an index alone
        conn.exec_driver_sql("VACUUM ANALYZE" if store.dialect == "postgresql" else "ANALYZE")
    return time.perf_counter() - t


def query_cases(world: World, rng: random.Random) -> dict:
    """filter name -> a function giving the next query (random values of that filter)."""
    def some_doc():
        return world.doc(rng.randrange(world.n))

    def cidr16():
        k = rng.randrange(world.n_nets)
        return f"{10 + k // 65536}.{(k // 256) % 256}.0.0/16"

    week_ago = world.now - timedelta(days=7)
    return {
        "domain *.root": lambda: {"domain": "*." + world.root(rng.randrange(world.n_roots))},
        "domain *label*": lambda: {"domain": "*" + world.root(rng.randrange(world.n_roots)).split(".")[0] + "*"},
        "domain prefix*": lambda: {"domain": f"{WORDS[rng.randrange(20)]}-{rng.randrange(world.n)}*"},
        "root": lambda: {"root": world.root(rng.randrange(world.n_roots))},
        "ip": lambda: {"ip": some_doc()["a_records"][0]},
        "ip /24": lambda: {"ip": world.net(rng.randrange(world.n_nets)) + ".0/24"},
        "ip /16": lambda: {"ip": cidr16()},
        "asn": lambda: {"asn": str(64512 + rng.randrange(world.n_asns))},
        "ns": lambda: {"ns": f"ns1.dns{rng.randrange(world.n_ns)}.net"},
        "registrar common (godaddy)": lambda: {"registrar": "godaddy"},
        "registrar rare": lambda: {"registrar": f"number {rng.randrange(10, 490)} ltd"},
        "since 1h": lambda: {"since": "1h"},
        "since..until (1h, a week ago)": lambda: {"since": _iso(week_ago), "until": _iso(week_ago + timedelta(hours=1))},
        "min_score 100": lambda: {"min_score": "100"},
        "registered_within 7d": lambda: {"registered_within": "7d"},
        "whois_status pending": lambda: {"whois_status": "pending"},
        "whois_status error": lambda: {"whois_status": "error: timeout"},
        "registrar + since 1d": lambda: {"registrar": "namecheap", "since": "1d"},
        "min_score 50 + since 7d": lambda: {"min_score": "50", "since": "7d"},
        "asn + registered_within 7d": lambda: {"asn": str(64512 + rng.randrange(world.n_asns)),
                                               "registered_within": "7d"},
    }


def bench_queries(store, world: World, rounds: int) -> dict:
    """filter -> {p50_ms, p95_ms, rows (mean found, limit 50)}: `scout query`'s search, default limit."""
    from scout import db

    rng = random.Random(3)
    out = {}
    cases = query_cases(world, rng)
    cases["(overview: counts and last hour's hits)"] = None
    for name, make in cases.items():
        times, found = [], []
        for k in range(rounds + 3):
            f = db.Filters.from_query(make(), now=world.now) if make else None
            t = time.perf_counter()
            docs = db.search(store, f) if f else db.overview(store)["hits"]
            if k >= 3:    # three warm-up queries
                times.append((time.perf_counter() - t) * 1000)
                found.append(len(docs))
        times.sort()
        out[name] = {"p50_ms": round(statistics.median(times), 2),
                     "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2),
                     "rows": round(sum(found) / len(found), 1)}
    return out


def bench_store(tmp: Path, rows: int, upserts: int, rounds: int, log=print,
                engines: tuple = ("postgresql", "sqlite")) -> dict:
    now = datetime.now(timezone.utc)
    fig: dict = {"store_rows": rows, "store_upsert_docs": upserts}
    made = []
    try:
        for engine in engines:
            def new_url(label):
                if engine == "sqlite":
                    return f"sqlite:///{tmp / f'store-{label}.db'}"
                made.append(pg_create())
                return made[-1]
            log(f"store: {engine} upserts, {upserts} documents in batches of {BATCH}")
            up = bench_upsert(new_url("upsert"), upserts, now)
            base = bench_insert_baseline(new_url("baseline"), upserts, now)
            fig[f"store_{engine}_upsert_per_s"] = round(up["new"])
            fig[f"store_{engine}_upsert_again_per_s"] = round(up["seen_again"])
            fig[f"store_{engine}_insert_baseline_per_s"] = round(base)
            fig[f"store_{engine}_upsert_ratio"] = round(up["new"] / base, 3)
            fig[f"store_{engine}_upsert_counts_ok"] = up["count_ok"]
            fig[f"store_{engine}_upsert_4_writers_per_s"] = round(bench_upsert_writers(new_url("writers"), upserts, now))
            if not rows:
                continue
            log(f"store: {engine} filled with {rows:,} domains")
            from scout import db

            store = db.open_store(new_url("query"))
            try:
                world = World(rows, now)
                fig[f"store_{engine}_fill_s"] = round(fill(store, world), 1)
                fig[f"store_{engine}_bytes_per_million"] = round(store_size(store) * 1_000_000 / rows)
                log(f"store: {engine} queries, {rounds} per filter")
                fig[f"store_{engine}_queries"] = bench_queries(store, world, rounds)
            finally:
                store.close()
    finally:
        for url in made:
            pg_drop(url)
    return fig


def print_store(fig: dict) -> None:
    for engine in ("postgresql", "sqlite"):
        if f"store_{engine}_upsert_per_s" in fig:
            print(f"store upserts, {engine}, docs/s (batches of {BATCH}): new {fig[f'store_{engine}_upsert_per_s']:,}, "
                  f"seen again {fig[f'store_{engine}_upsert_again_per_s']:,}, four writers "
                  f"{fig[f'store_{engine}_upsert_4_writers_per_s']:,}; executemany INSERT "
                  f"{fig[f'store_{engine}_insert_baseline_per_s']:,} (x{fig[f'store_{engine}_upsert_ratio']})")
        q = fig.get(f"store_{engine}_queries")
        if not q:
            continue
        print(f"store query ms on {fig['store_rows']:,} rows, {engine} (limit 50): p50 / p95 / rows found")
        for name, v in q.items():
            print(f"  {name:<32} {v['p50_ms']:>8.2f} {v['p95_ms']:>8.2f} {v['rows']:>7.1f}")
        size = fig.get(f"store_{engine}_bytes_per_million")
        if size:
            print(f"  store size per million domains: {size / 2**30:.2f} GiB (fill {fig[f'store_{engine}_fill_s']} s)")


if __name__ == "__main__":  # python bench/store_bench.py ROWS UPSERTS ROUNDS [ENGINE,...]
    import json
    import sys
    import tempfile

    import shutil

    d = Path(tempfile.mkdtemp(prefix="scout-store-bench-"))
    engines = tuple(sys.argv[4].split(",")) if len(sys.argv) > 4 else ("postgresql", "sqlite")
    try:
        f = bench_store(d, int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), engines=engines)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print_store(f)
    print(json.dumps(f))

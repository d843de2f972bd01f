"""Sizing: Redis memory and disk per million domains, measured on a smaller run and extrapolated.

    python -m bench.sizing [--domains 30000] [--json]

What it measures, on a private redis-server and a temporary OUTPUT_DIR, with the real code paths:
- seen keys: the producer's de-duplication (`add_if_new`, CACHE_TTL) per new domain;
- domain WHOIS cache: one entry per root domain (real answers from tests/data/whois-corpus, parsed),
  stored as the store stores it (zlib) against the baseline of the same values as plain JSON;
- IP WHOIS cache: one RDAP network answer per IP_NETS_PER_DOMAIN x domains;
- a queued backlog: chains of BATCH_SIZE items published with no worker (with their ledger entries);
- documents: the real save stage, with OUTPUT_RAW_WHOIS=true (baseline) and false; bytes on disk
  (allocated blocks) and inodes (files + folders).
Redis figures are `used_memory` differences (after the data is written, each kind on its own database
flushed before), divided by the count and scaled to a million. Ratios: compressed/plain, lean/full.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROOTS_PER_DOMAIN = None          # measured from the certstream fixture (unique roots / unique names)
IP_NETS_PER_DOMAIN = 0.1         # assumption: one new network answer per ten new domains (CDNs, hosting)
MILLION = 1_000_000


def fixture_ratio() -> float:
    """Unique root domains per unique name in the recorded certstream sample (real CT traffic)."""
    from bench.workload import FIXTURE
    from scout.names import normalise_domain, root_domain
    from scout.sources.frames import parse_frame

    names = set()
    for line in FIXTURE.read_text(errors="replace").splitlines():
        for raw in parse_frame(line).names:
            n, _ = normalise_domain(raw)
            if n:
                names.add(n)
    return len({root_domain(n) for n in names}) / max(1, len(names))


def whois_answers(k: int = 200) -> list[dict]:
    """Real WHOIS answers as the cache holds them: {raw, parsed}."""
    from bench.whois_corpus import load_corpus
    from scout.whois.text import fields_of

    samples = [s for s in load_corpus() if s.kind == "domain"][:k]
    out = []
    for s in samples:
        fields = fields_of(s.domain, s.text)
        out.append({"raw": s.text, "parsed": {"status": "ok", "source": "whois", "server": "whois.example",
                                               **{k: v for k, v in fields.items() if isinstance(v, (str, list))}}})
    return out


def used(r) -> int:
    return int(r.info("memory")["used_memory"])


def measure(r, write) -> int:
    r.flushdb()
    before = used(r)
    write()
    time.sleep(0.2)
    return used(r) - before


def redis_figures(redis_srv, n: int, roots: int) -> dict:
    from scout.store import RedisStore
    from tests.servers.rdap import ARIN_8_8_8

    r = redis_srv.client(2)
    store = RedisStore(redis_srv.url(2))
    names = [f"n{i}-{random.Random(i).randrange(10**9)}.sizing-{i % max(1, roots)}.example" for i in range(n)]
    answers = whois_answers()
    nets = max(1, int(n * IP_NETS_PER_DOMAIN))
    ip_answer = {"raw": json.dumps(ARIN_8_8_8), "info": {"status": "ok", "asn": "15169", "network_cidr": "8.8.8.0/24",
                                                        "network_name": "GOGL", "country": "US", "server": "rdap.arin.net"}}

    def seen():
        for i in range(0, n, 512):
            store.add_if_new(names[i:i + 512], 86400)

    def dw(plain: bool):
        pipe = r.pipeline(transaction=False)
        for i in range(roots):
            value = answers[i % len(answers)]
            if plain:
                pipe.set(f"scout:dw:root{i}.example", json.dumps(value, separators=(",", ":")), px=7 * 86400_000)
            else:
                store.set_json(f"dw:root{i}.example", value, 7 * 86400)
        pipe.execute()

    def ipnet():
        for i in range(nets):
            store.set_json(f"ipnet:10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}/24", ip_answer, 7 * 86400)

    out = {"seen_bytes_per_domain": measure(r, seen) / n,
           "dw_bytes_per_root": measure(r, lambda: dw(False)) / roots,
           "dw_plain_bytes_per_root": measure(r, lambda: dw(True)) / roots,
           "ipnet_bytes_per_network": measure(r, ipnet) / nets}
    r.flushdb()
    return out


def backlog_figure(redis_srv, n: int) -> float:
    """Bytes of Redis per domain waiting in the dns queue (chains of BATCH_SIZE, with the ledger)."""
    from scout.celery import configure
    from scout.config import load_settings
    from scout.stages.chain import publish_chain
    from scout.store import RedisStore

    url = redis_srv.url(3)
    s = load_settings({"BROKER_URL": url, "REDIS_URL": url}, None)
    app = configure(s)
    app._pool = None
    store = RedisStore(url)
    r = redis_srv.client(3)

    def publish():
        for i in range(0, n, s.batch_size):
            items = [{"d": f"www.q{j}.backlog-{j}.example", "r": f"backlog-{j}.example", "seen": time.time()}
                     for j in range(i, min(n, i + s.batch_size))]
            publish_chain(items, s, store)
    per = measure(r, publish) / n
    r.flushdb()
    return per


def disk_figures(tmp: Path, n: int, roots: int) -> dict:
    from scout.config import load_settings
    from scout.stages.save import save_items
    from scout.store import MemoryStore
    from tests.servers.rdap import ARIN_8_8_8

    answers = whois_answers()
    out = {}
    for raw in (True, False):
        d = tmp / f"docs-{raw}"
        s = load_settings({"OUTPUT_DIR": str(d), "OUTPUT_RAW_WHOIS": str(raw).lower()}, None)
        items = [{"d": f"www{i}.root{i % roots}.example", "r": f"root{i % roots}.example", "seen": time.time(),
                  "dns": {"a_records": ["8.8.8.8"], "mx_records": [f"10 mx.root{i % roots}.example."],
                          "dns_status": {"A": "ok"}},
                  "dw": answers[(i % roots) % len(answers)],
                  "iw": {"8.8.8.8": {"raw": json.dumps(ARIN_8_8_8), "info": {"status": "ok", "asn": "15169"}}},
                  "score": 0, "matches": []} for i in range(n)]
        for i in range(0, n, 100):
            save_items(items[i:i + 100], s, MemoryStore())
        blocks = inodes = size = 0
        for dirpath, dirnames, filenames in os.walk(d):
            inodes += 1 + len(filenames)
            blocks += os.stat(dirpath).st_blocks * 512      # a folder's own blocks
            for f in filenames:
                st = os.stat(os.path.join(dirpath, f))
                blocks += st.st_blocks * 512
                size += st.st_size
        out["raw" if raw else "lean"] = {"disk_bytes_per_domain": blocks / n, "file_bytes_per_domain": size / n,
                                         "inodes_per_domain": inodes / n}
        shutil.rmtree(d)
    return out


def run(n: int, tmp: Path) -> dict:
    from bench.services import PrivateRedis

    ratio = fixture_ratio()
    roots = max(1, int(n * ratio))
    srv = PrivateRedis(tmp / "redis").start()
    try:
        red = redis_figures(srv, n, roots)
        queued = backlog_figure(srv, n)
    finally:
        srv.stop()
    disk = disk_figures(tmp, n, roots)
    per_m_day = (red["seen_bytes_per_domain"] * MILLION                      # CACHE_TTL 24h: one day of names
                 + 7 * ratio * MILLION * red["dw_bytes_per_root"]              # WHOIS_CACHE_TTL 7d
                 + 7 * IP_NETS_PER_DOMAIN * MILLION * red["ipnet_bytes_per_network"])
    plain_m_day = per_m_day + 7 * ratio * MILLION * (red["dw_plain_bytes_per_root"] - red["dw_bytes_per_root"])
    return {
        "domains_measured": n, "roots_per_domain": round(ratio, 3), "ip_nets_per_domain": IP_NETS_PER_DOMAIN,
        "redis": {k: round(v, 1) for k, v in red.items()},
        "seen_mb_per_million_domains_a_day": round(red["seen_bytes_per_domain"] * MILLION / 2**20, 1),
        # The lookups, not the domains, fill the WHOIS caches: at the default rates (one domain and one IP
        # lookup a second per source address) and WHOIS_CACHE_TTL=7d, at most this much per address.
        "whois_cache_mb_per_source_address": round(7 * 86400 * (red["dw_bytes_per_root"]
                                                                + red["ipnet_bytes_per_network"]) / 2**20, 1),
        "whois_cache_mb_per_source_address_plain": round(7 * 86400 * (red["dw_plain_bytes_per_root"]
                                                                      + red["ipnet_bytes_per_network"]) / 2**20, 1),
        "redis_mb_per_million_domains_a_day_every_root_looked_up": round(per_m_day / 2**20, 1),
        "redis_mb_per_million_domains_a_day_every_root_looked_up_plain": round(plain_m_day / 2**20, 1),
        "ratio_compressed_vs_plain_dw": round(red["dw_bytes_per_root"] / red["dw_plain_bytes_per_root"], 3),
        "queued_bytes_per_domain": round(queued, 1),
        "queued_mb_at_max_backlog_200000": round(queued * 200_000 / 2**20, 1),
        "disk": {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in disk.items()},
        "disk_gb_per_million_domains": {k: round(v["disk_bytes_per_domain"] * MILLION / 2**30, 2) for k, v in disk.items()},
        "inodes_per_million_domains": {k: int(v["inodes_per_domain"] * MILLION) for k, v in disk.items()},
        "ratio_disk_lean_vs_raw": round(disk["lean"]["disk_bytes_per_domain"] / disk["raw"]["disk_bytes_per_domain"], 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=30_000)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="scout-sizing-"))
    try:
        print(json.dumps(run(args.domains, tmp), sort_keys=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""End to end: producer -> Redis broker -> real `scout worker` processes (dns, whois, save, lookup) ->
documents on disk, with nsd on loopback and WHOIS answered from a warm cache; and its two baselines:
a bare asyncio dnspython loop (one process per core) and a naive chain of three tasks per domain
(bench/naive_app.py) on the same broker, DNS server and disk.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

from tests.servers.processes import ProcessGroup

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ helpers

def prefill_whois(store, domains: list[str], nets: list[str]) -> None:
    """The warm cache: a domain WHOIS answer for every root and an IP WHOIS answer per /24 network."""
    from scout.names import root_domain
    from scout.stages.ipcache import NET_LENGTHS
    from scout.store import PREFIX

    roots = sorted({root_domain(d) for d in domains})
    pipe = store.r.pipeline(transaction=False)
    ttl = 7 * 86400 * 1000
    for root in roots:
        value = {"raw": f"Domain Name: {root.upper()}\nRegistrar: Bench Registrar\n",
                 "parsed": {"status": "ok", "source": "rdap", "server": "rdap.bench.example",
                            "registrar": "Bench Registrar", "creation_date": "2020-01-01T00:00:00Z"}}
        pipe.set("scout:dw:" + root, json.dumps(value, separators=(",", ":")), px=ttl)
    for net in nets:
        cidr = f"{net}.0/24"
        value = {"raw": "{}", "info": {"status": "ok", "asn": "64500", "asn_cidr": cidr, "network_cidr": cidr,
                                       "network_name": "BENCH-NET", "country": "NL", "server": "rdap.bench"},
                 "cover": cidr}
        pipe.set("scout:ipnet:" + cidr, json.dumps(value, separators=(",", ":")), px=ttl)
    pipe.sadd(PREFIX + NET_LENGTHS, "4/24")     # as scout.stages.ipcache.cache_ip_result notes them
    pipe.execute()


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def latencies_ms(output_dir: Path, timeouts: list | None = None) -> list[float]:
    """Per document: file mtime (saved) minus first_seen (the producer's `seen`), in ms. Documents with
    a DNS TIMEOUT are counted into timeouts[0]."""
    out = []
    for path in Path(output_dir).rglob("*.json"):
        if path.name.startswith(".tmp-"):
            continue
        doc = json.loads(path.read_bytes())
        out.append((path.stat().st_mtime - _iso(doc["first_seen"].replace("Z", "+0000"))) * 1000)
        if timeouts is not None and "TIMEOUT" in (doc.get("dns_status") or {}).values():
            timeouts[0] += 1
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


class Procs(ProcessGroup):
    """Worker processes with arbitrary command lines, run from the checkout (the tests' ProcessGroup)."""

    def __init__(self, env: dict, tmp: Path):
        super().__init__(env, tmp, cwd=ROOT)

    def start(self, argv: list[str], label: str, wait_ready: bool = True):
        return self.start_argv(argv, label, wait_ready)


def scout_worker_env(redis_url: str, dns_server: str, output_dir: Path, dns_workers: int, extra=None) -> dict:
    from tests.support.env import scout_env

    boot = output_dir.parent / "bootstrap-empty"
    boot.mkdir(parents=True, exist_ok=True)
    env = scout_env(DNS_TIMEOUT="2s", DNS_RETRIES="2", BROKER_URL=redis_url, REDIS_URL=redis_url, DNS_SERVER=dns_server, OUTPUT_DIR=str(output_dir),
                    DNS_WORKERS=dns_workers, RDAP_BOOTSTRAP_DIR=str(boot), WHOIS_REFERRAL_SERVER="127.0.0.1:9",
                    STATS_INTERVAL="3600s")
    env.update(extra or {})
    return env


def start_scout_workers(env: dict, tmp: Path, dns_procs: int = 1) -> Procs:
    """dns (x dns_procs), whois, save and lookup workers from `scout worker`'s own command lines."""
    from scout.cli.worker import worker_argv
    from scout.config import load_settings

    s = load_settings(env, None)
    procs = Procs(env, tmp)
    for i in range(dns_procs):
        procs.start(_named(worker_argv(s, "dns"), f"dns{i}"), f"dns{i}")
    for stage in ("whois", "save", "lookup"):
        procs.start(_named(worker_argv(s, stage), stage), stage)
    return procs


def _named(argv: list[str], label: str) -> list[str]:
    return [a.replace("%h", f"{label}-{os.getpid()}") if "%h" in a else a for a in argv]


def make_producer(env: dict):
    from scout.celery import configure
    from scout.config import load_settings
    from scout.counters import Counters
    from scout.producer.sinks import CelerySink
    from scout.producer.producer import Producer
    from scout.store import RedisStore

    s = load_settings(env, None)
    app = configure(s)
    # An earlier stage of the benchmark may have published through another broker URL: drop the
    # connection and producer pools that configure() leaves in place.
    app._pool = None
    app.amqp._producer_pool = None
    store = RedisStore(s.redis_url)
    counters = Counters()
    from bench.producer_bench import make_watchlist

    return Producer(s, CelerySink(s, store, counters, app=app), store, counters, make_watchlist()), store


def feed(producer, frames: list[str], rate: float | None = None, per_frame: int = 2) -> float:
    """Hand frames to the producer as fast as it takes them, or at `rate` domains/s; -> start time."""
    t0 = time.time()
    m0 = time.monotonic()
    for n, text in enumerate(frames):
        if rate:
            due = m0 + n * per_frame / rate
            while True:
                now = time.monotonic()
                if now >= due:
                    break
                producer.tick()
                time.sleep(min(0.005, due - now))
        producer.handle_frame(text)
        if n % 32 == 0:
            producer.tick()
    producer.close()
    return t0


def wait_saved(store, n: int, timeout: float, key="domains_saved", hash_key=None) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if hash_key:
            raw = store.r.hget(hash_key, key)
            done = int(raw or 0)
        else:
            c = store.counters()
            done = c.get(key, 0) + c.get("domains_failed", 0)
        if done >= n:
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(f"only {done} of {n} saved after {timeout:.0f}s")


# ------------------------------------------------------------------ scout end to end

def run_scout(redis, dns_server: str, domains: list[str], nets: list[str], tmp: Path, *,
              dns_workers: int = 50, dns_procs: int = 1, paced_rate: float | None = None,
              paced_domains: list[str] | None = None) -> dict:
    """One end-to-end run (fresh workers, fresh Redis db, fresh output dir)."""
    from bench.workload import e2e_frames
    from scout.store import RedisStore

    url = redis.url(0)
    out_dir = tmp / f"out-{dns_workers}-{dns_procs}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    store = RedisStore(url)
    store.r.flushdb()
    prefill_whois(store, domains + (paced_domains or []), nets)
    env = scout_worker_env(url, dns_server, out_dir, dns_workers)
    procs = start_scout_workers(env, tmp, dns_procs)
    try:
        producer, _ = make_producer(env)
        frames = e2e_frames(domains)
        # Where the CPU goes: each worker process, and this process (the producer).
        workers = {label: proc.pid for label, proc, _ in procs.procs}
        cpu0 = {label: cpu_seconds(pid) for label, pid in workers.items()}
        cpu0["producer"] = time.process_time()
        t0 = feed(producer, frames)
        enq = producer.counters.get("enqueued")
        t1 = wait_saved(store, enq, timeout=max(120, len(domains) / 50))
        cpu = {label: cpu_seconds(pid) - cpu0[label] for label, pid in workers.items()}
        cpu["producer"] = time.process_time() - cpu0["producer"]
        timeouts = [0]
        lat = latencies_ms(out_dir, timeouts)
        res = {"domains": enq, "seconds": round(t1 - t0, 3), "domains_per_s": round(enq / (t1 - t0), 1),
               "burst_p50_ms": round(pct(lat, 50), 1), "burst_p99_ms": round(pct(lat, 99), 1),
               "dns_workers": dns_workers, "dns_procs": dns_procs}
        c = store.counters()
        res["whois_dispatched"] = c.get("whois_dispatched", 0)
        res["domains_failed"] = c.get("domains_failed", 0)
        res["dns_timeout_docs"] = timeouts[0]
        res["dns_retries"] = c.get("dns_retries", 0)
        res["cpu_ms_per_domain"] = {k: round(v * 1000 / max(1, enq), 3) for k, v in cpu.items()}
        if paced_rate and paced_domains:
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir(parents=True)
            before = store.counters().get("domains_saved", 0)
            producer, _ = make_producer(env)
            feed(producer, e2e_frames(paced_domains), rate=paced_rate)
            enq2 = producer.counters.get("enqueued")
            wait_saved(store, before + enq2, timeout=120)
            lat = latencies_ms(out_dir)
            res.update(paced_rate=round(paced_rate), paced_domains=enq2, p50_ms=round(pct(lat, 50), 1),
                       p99_ms=round(pct(lat, 99), 1))
        return res
    finally:
        procs.stop()
        store.r.flushdb()


# ------------------------------------------------------------------ baseline 1: bare dnspython

def _bare_worker(args):
    domains, host, port, in_flight = args
    import dns.asyncquery
    import dns.exception
    import dns.message
    import dns.name

    from scout.stages.dns import TYPES

    timeouts = [0]

    async def main():
        sem = asyncio.Semaphore(in_flight)

        async def one(qname, t):
            for attempt in range(3):   # two retries and 2 s, as DNS_RETRIES / DNS_TIMEOUT default
                q = dns.message.make_query(qname, t, use_edns=0, payload=1232)
                try:
                    async with sem:
                        await dns.asyncquery.udp_with_fallback(q, host, timeout=2.0, port=port,
                                                               ignore_unexpected=True)
                    return
                except dns.exception.Timeout:
                    timeouts[0] += 1

        async def dom(d):
            qname = dns.name.from_text(d)
            await asyncio.gather(*(one(qname, t) for t in TYPES))

        await asyncio.gather(*(dom(d) for d in domains))

    t0 = time.time()
    asyncio.run(main())
    return t0, time.time(), timeouts[0]


def bare_dns(domains: list[str], dns_server: str, procs: int | None = None, in_flight: int = 256) -> dict:
    host, port = dns_server.rsplit(":", 1)
    procs = procs or os.cpu_count() or 1
    chunks = [domains[i::procs] for i in range(procs)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(procs) as pool:
        spans = pool.map(_bare_worker, [(c, host, int(port), in_flight) for c in chunks])
    secs = max(e for _, e, _ in spans) - min(s for s, _, _ in spans)
    return {"domains": len(domains), "seconds": round(secs, 3), "domains_per_s": round(len(domains) / secs, 1),
            "processes": procs, "timeouts": sum(t for _, _, t in spans)}


# ------------------------------------------------------------------ baseline 2: naive chain per domain

def run_naive(redis, dns_server: str, domains: list[str], nets: list[str], tmp: Path, dns_workers: int = 50) -> dict:
    from scout.store import RedisStore

    url = redis.url(1)
    out_dir = tmp / "out-naive"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    store = RedisStore(url)
    store.r.flushdb()
    prefill_whois(store, domains, nets)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "REDIS_"))}
    env.update(PYTHONPATH=str(ROOT), NAIVE_BROKER=url, NAIVE_DNS_SERVER=dns_server, NAIVE_OUTPUT_DIR=str(out_dir))
    base = [sys.executable, "-m", "celery", "-A", "bench.naive_app", "worker", "-P", "threads", "-l", "INFO", "-E"]
    procs = Procs(env, tmp)
    try:
        procs.start(base + ["-Q", "naive_dns", "-c", str(dns_workers), "-n", f"ndns@{os.getpid()}"], "naive-dns")
        procs.start(base + ["-Q", "naive_whois", "-c", "8", "-n", f"nwhois@{os.getpid()}"], "naive-whois")
        procs.start(base + ["-Q", "naive_save", "-c", "8", "-n", f"nsave@{os.getpid()}"], "naive-save")
        os.environ["NAIVE_BROKER"] = url
        import importlib

        import bench.naive_app as naive

        naive = importlib.reload(naive)
        t0 = time.time()
        for d in domains:
            naive.enqueue(d, time.time())
        t_enq = time.time() - t0
        t1 = wait_saved(store, len(domains), timeout=max(120, len(domains) / 20), key="saved",
                        hash_key="naive:counters")
        lat = latencies_ms(out_dir)
        return {"domains": len(domains), "seconds": round(t1 - t0, 3),
                "domains_per_s": round(len(domains) / (t1 - t0), 1), "enqueue_seconds": round(t_enq, 3),
                "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1)}
    finally:
        procs.stop()
        store.r.flushdb()

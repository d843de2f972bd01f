"""Soak (not CI): the replay server at 1,000 frames/s through `scout produce`, a private Redis and real
`scout worker` processes (dns, whois, lookup, save) with the default settings, then idle. Every 10 s it
samples producer and worker RSS and open files, Redis used_memory, each queue's length and the age of its
oldest message, documents saved and disk per document; at the end a JSON summary, and a PNG plot when
matplotlib is installed (an optional, bench-only import).

    python -m bench.soak --minutes 30 --idle 10 [--plot soak.png]

Loopback only: nsd answers a wildcard zone (`*.soak.`), a local RDAP server answers every domain (its
bootstrap file names it), the addresses are documentation ones (never looked up). Each frame names a new
root domain, so the rate-limited WHOIS lookups (1/s per worker, the default) fall behind at once and
WHOIS_MAX_BACKLOG must hold. The pipeline on a small machine is slower than 1,000 frames/s, so MAX_BACKLOG
must hold too. `--cache-ttl 5m` shortens CACHE_TTL and WHOIS_CACHE_TTL (the only settings changed then)
so the idle phase shows memory coming back down when the TTLs expire.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ZONE = ("@ 3600 IN SOA ns1.soak. hostmaster.soak. 1 3600 600 86400 300\n@ 3600 IN NS ns1.soak.\n"
        "ns1 3600 IN A 127.0.0.1\n* 300 IN A 198.51.100.40\n* 300 IN MX 10 mx.soak.\n")
STAGES = ("dns", "whois", "lookup", "save")


def proc_figures(pid: int) -> dict:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        return {"rss_mb": round(rss / 1024, 1), "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    except (OSError, StopIteration):
        return {"rss_mb": 0.0, "fds": 0}


def oldest_age(r, queue: str, now: float) -> float | None:
    """Seconds since the oldest domain in the queue's oldest message was seen (chain messages carry each
    item's `seen`; kombu pushes on the left and pops on the right, so the oldest is at index -1)."""
    for name in [queue] + [f"{queue}:{p}" for p in range(1, 10)]:
        raw = r.lindex(name, -1)
        if raw is None:
            continue
        try:
            args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
            seen = [it["seen"] for it in args[0] if isinstance(it, dict) and "seen" in it]
            return round(now - min(seen), 1) if seen else None
        except (ValueError, KeyError, IndexError, TypeError):
            return None
    return None


def disk_figures(out: Path) -> dict:
    files = blocks = 0
    stack = [str(out)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    st = e.stat(follow_symlinks=False)
                    blocks += st.st_blocks * 512
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.name.endswith(".json"):
                        files += 1
        except FileNotFoundError:
            continue
    return {"documents": files, "disk_mb": round(blocks / 2**20, 1),
            "disk_kb_per_document": round(blocks / 1024 / files, 2) if files else None}


def sample(t0: float, producer, workers: dict, r, out: Path, server) -> dict:
    now = time.time()
    queues = {q: sum(r.llen(n) for n in [q] + [f"{q}:{p}" for p in range(1, 10)])
              for q in ("dns", "whois", "save", "whois.default")}
    counters = {k.decode(): int(v) for k, v in r.hgetall("scout:counters").items()}
    s = {"t": round(time.monotonic() - t0), "producer": proc_figures(producer.pid),
         "workers": {k: proc_figures(p.pid) for k, p in workers.items()},
         "redis_mb": round(r.info("memory")["used_memory"] / 2**20, 1), "queues": queues,
         "oldest_age_s": {q: oldest_age(r, q, now) for q in ("dns", "whois", "save")},
         "frames_sent": server.frames_sent, **disk_figures(out),
         "counters": {k: counters.get(k, 0) for k in ("domains_saved", "producer:unique", "producer:dropped_backlog",
                                                     "whois_skipped_backlog", "whois_dispatched", "whois_landed",
                                                     "tasks_failed", "ledger_resent", "ledger_sweeps_paused")}}
    return s


def setup(tmp: Path, args):
    """nsd, the RDAP server and its bootstrap file, the private Redis; -> (env, stop callables)."""
    from bench.services import PrivateRedis
    from tests.servers.dns_nsd import start_nsd, stop_nsd
    from tests.servers.rdap import RdapServer
    from tests.support.env import scout_env

    nsd_proc, nsd_port = start_nsd({"soak.": ZONE}, tmp / "nsd", wait=60)
    rdap = RdapServer().start()
    rdap.default = ("domain", {})
    boot = tmp / "bootstrap"
    boot.mkdir()
    for f, svc in (("dns.json", [[["soak"], [rdap.base]]]), ("ipv4.json", []), ("ipv6.json", [])):
        (boot / f).write_text(json.dumps({"version": "1.0", "services": svc}))
    redis_srv = PrivateRedis(tmp / "redis").start()
    # Defaults everywhere but the loopback addresses (and, with --cache-ttl, the two cache TTLs).
    env = scout_env(BROKER_URL=redis_srv.url(0), REDIS_URL=redis_srv.url(0), OUTPUT_DIR=tmp / "out",
                    DNS_SERVER=f"127.0.0.1:{nsd_port}", RDAP_BOOTSTRAP_DIR=boot, WHOIS_ALLOW_NETWORKS="127.0.0.0/8",
                    WHOIS_REFERRAL_SERVER="127.0.0.1:9", LOG_LEVEL="INFO", STATS_INTERVAL="60s",
                    BATCH_LINGER="200ms", DNS_TIMEOUT="2s", DNS_RETRIES="2")
    if args.cache_ttl:
        env.update(CACHE_TTL=args.cache_ttl, WHOIS_CACHE_TTL=args.cache_ttl)
    stops = [redis_srv.stop, rdap.stop, lambda: stop_nsd(nsd_proc)]
    return env, redis_srv, stops


def start_processes(env: dict, tmp: Path, url: str):
    from scout.cli.worker import worker_argv
    from scout.config import load_settings
    from scout.sources.replay import ReplayServer

    s = load_settings(env, None)
    workers = {}
    for stage in STAGES:
        argv = [a.replace("%h", f"soak-{stage}-{os.getpid()}") if "%h" in a else a for a in worker_argv(s, stage)]
        workers[stage] = subprocess.Popen(argv, env=env, cwd=str(tmp), stdout=subprocess.DEVNULL,
                                          stderr=open(tmp / f"worker-{stage}.log", "wb"), start_new_session=True)
    return workers, ReplayServer


def frames(n: int, names_per_frame: int = 3) -> list[str]:
    return [json.dumps({"message_type": "dns_entries",
                        "data": [f"{p}.r{i}.soak" for p in ("www", "api", "mail")[:names_per_frame]]})
            for i in range(n)]


def summarise(samples: list[dict], load_s: float, args) -> dict:
    warm = [x for x in samples if load_s / 3 <= x["t"] <= load_s] or samples
    idle = [x for x in samples if x["t"] > load_s] or samples[-1:]

    def span(xs, f):
        vals = [f(x) for x in xs]
        return [min(vals), max(vals)]

    last = samples[-1]
    return {
        "minutes": args.minutes, "idle_minutes": args.idle, "rate": args.rate, "cache_ttl": args.cache_ttl or "default",
        "frames_sent": last["frames_sent"], "counters": last["counters"], "documents": last["documents"],
        "disk_kb_per_document": last["disk_kb_per_document"],
        "producer_rss_mb_after_warmup": span(warm, lambda x: x["producer"]["rss_mb"]),
        "producer_fds_after_warmup": span(warm, lambda x: x["producer"]["fds"]),
        "worker_rss_mb_after_warmup": {k: span(warm, lambda x, k=k: x["workers"][k]["rss_mb"]) for k in STAGES},
        "worker_fds_after_warmup": {k: span(warm, lambda x, k=k: x["workers"][k]["fds"]) for k in STAGES},
        "redis_mb_after_warmup": span(warm, lambda x: x["redis_mb"]),
        "redis_mb_idle_first_last": [idle[0]["redis_mb"], idle[-1]["redis_mb"]],
        "queue_max": {q: max(x["queues"][q] for x in samples) for q in samples[0]["queues"]},
        "oldest_age_s_max": {q: max((x["oldest_age_s"][q] or 0) for x in samples) for q in ("dns", "whois", "save")},
    }


def plot(samples: list[dict], load_s: float, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    t = [x["t"] / 60 for x in samples]
    fig, ax = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    ax[0].plot(t, [x["producer"]["rss_mb"] for x in samples], label="producer")
    for k in STAGES:
        ax[0].plot(t, [x["workers"][k]["rss_mb"] for x in samples], label=f"worker {k}")
    ax[0].set_ylabel("RSS (MB)")
    ax[1].plot(t, [x["redis_mb"] for x in samples], label="Redis used_memory (MB)")
    ax[1].plot(t, [x["disk_mb"] / 10 for x in samples], label="OUTPUT_DIR disk (MB / 10)")
    for q in ("dns", "whois", "save", "whois.default"):
        ax[2].plot(t, [x["queues"][q] for x in samples], label=f"{q} messages")
    ax[2].set_yscale("symlog")
    for q in ("dns", "whois", "save"):
        ax[3].plot(t, [x["oldest_age_s"][q] or 0 for x in samples], label=f"{q} oldest (s)")
    ax[3].plot(t, [x["producer"]["fds"] for x in samples], label="producer open files")
    ax[3].set_xlabel("minutes")
    for a in ax:
        a.axvline(load_s / 60, color="grey", linestyle=":")
        a.legend(fontsize=7, loc="upper left")
    fig.suptitle("certstream-scout soak: 1,000 frames/s, defaults, then idle (dotted line)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="load phase")
    ap.add_argument("--idle", type=float, default=10.0, help="idle phase after the load, minutes")
    ap.add_argument("--rate", type=float, default=1000.0, help="frames/s")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--cache-ttl", default="", help="e.g. 5m: CACHE_TTL and WHOIS_CACHE_TTL (default: defaults)")
    ap.add_argument("--plot", default="", help="PNG to write (needs matplotlib)")
    ap.add_argument("--samples", default="", help="JSONL file for every sample")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="scout-soak-"))
    env, redis_srv, stops = setup(tmp, args)
    load_s = args.minutes * 60
    workers, ReplayServer = start_processes(env, tmp, redis_srv.url(0))
    server = ReplayServer(frames=frames(int(args.rate * load_s)), rate=args.rate).start()
    producer = subprocess.Popen([sys.executable, "-m", "scout", "produce", "--url", server.url("/domains-only")],
                                env=env, cwd=str(tmp), stdout=subprocess.PIPE, stderr=open(tmp / "producer.log", "wb"),
                                text=True, start_new_session=True)
    r, samples, t0 = redis_srv.client(0), [], time.monotonic()
    sink = open(args.samples, "w") if args.samples else None
    try:
        while time.monotonic() - t0 < load_s + args.idle * 60:
            time.sleep(max(0.0, args.every - (time.monotonic() - t0) % args.every))
            samples.append(sample(t0, producer, workers, r, tmp / "out", server))
            line = json.dumps(samples[-1], sort_keys=True)
            print(line, flush=True)
            if sink:
                sink.write(line + "\n")
    finally:
        for p in [producer, *workers.values()]:
            p.terminate()
        for p in [producer, *workers.values()]:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        server.stop()
        for stop in stops:
            stop()
    summary = summarise(samples, load_s, args)
    if args.plot:
        summary["plot"] = args.plot if plot(samples, load_s, Path(args.plot)) else "matplotlib not installed"
    summary["tmp"] = str(tmp)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

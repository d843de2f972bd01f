"""Soak benchmark (not CI): the replay server at 1,000 frames/s for N minutes through `scout produce`, a
private Redis and real `celery worker` processes (nsd on loopback for DNS, WHOIS skipped). Every 10 s it
prints the producer's RSS, open files and threads, and Redis used_memory; a final JSON line sums it up.

    .venv/bin/python -m bench.soak --minutes 3

What to look for: producer RSS, fds and threads flat after warm-up; Redis used_memory bounded (the
producer stops enqueueing above MAX_BACKLOG and counts `dropped_backlog`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def proc_figures(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    threads = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
    return {"rss_mb": round(rss / 1024, 1), "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def main(argv=None) -> int:
    from scout.sources.replay import ReplayServer
    from tests.conftest import scout_env
    from tests.support.reliability import PrivateRedis, start_worker
    from tests.servers.dns_nsd import nsd_server
    from tests.servers.processes import reading, stop_gracefully
    from tests.support.zones import zone_texts

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="frames/s")
    ap.add_argument("--max-backlog", type=int, default=20000)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="scout-soak-"))
    names_per_frame = 3
    frames = [json.dumps({"message_type": "dns_entries",
                          "data": [f"s{i}-{j}.preview-pages.example" for j in range(names_per_frame)]})
              for i in range(int(args.rate * 60 * args.minutes) + 1000)]
    redis_server = PrivateRedis(tmp).start()
    workers = []
    with nsd_server(zone_texts(), tmp / "nsd") as dns_port:
        env = scout_env(BROKER_URL=redis_server.url, OUTPUT_DIR=tmp / "out", DNS_SERVER=f"127.0.0.1:{dns_port}",
                        WHOIS_MIN_SCORE=1000, WHOIS_REFERRAL_SERVER="127.0.0.1:9", MAX_BACKLOG=args.max_backlog,
                        STATS_INTERVAL="30s")
        for stage in ("dns", "whois", "save"):
            workers.append(start_worker(env, tmp, stage, stage))
        server = ReplayServer(frames=frames, rate=args.rate).start()
        producer = subprocess.Popen([sys.executable, "-m", "scout", "produce", "--url", server.url("/domains-only")],
                                    env=env, cwd=str(tmp), stdout=subprocess.PIPE,
                                    stderr=open(tmp / "producer.log", "wb"), text=True)
        rc = redis_server.client()
        samples = []
        started = time.monotonic()
        try:
            with reading(producer, server):
                while time.monotonic() - started < args.minutes * 60:
                    time.sleep(10)
                    s = dict(proc_figures(producer.pid), t=round(time.monotonic() - started),
                             redis_mb=round(rc.info("memory")["used_memory"] / 2**20, 1),
                             dns_queue=rc.llen("dns"), frames_sent=server.frames_sent)
                    samples.append(s)
                    print(json.dumps(s), flush=True)
                out, _ = stop_gracefully(producer, 60)
        finally:
            for w in workers:
                w.stop()
            redis_server.kill()
    counts = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    warm = samples[len(samples) // 3:] or samples
    summary = {
        "minutes": args.minutes, "rate": args.rate, "frames_sent": samples[-1]["frames_sent"] if samples else 0,
        "producer": {k: counts.get(k, 0) for k in ("frames", "unique", "enqueued", "dropped_backlog",
                                                   "frames_dropped_buffer")},
        "rss_mb": [min(s["rss_mb"] for s in warm), max(s["rss_mb"] for s in warm)],
        "fds": [min(s["fds"] for s in warm), max(s["fds"] for s in warm)],
        "threads": [min(s["threads"] for s in warm), max(s["threads"] for s in warm)],
        "redis_mb_max": max(s["redis_mb"] for s in samples), "tmp": str(tmp),
    }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

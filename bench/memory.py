"""Producer memory: resident set size after N1 and N2 names of a generated domains-only stream, with
the real producer (default watchlist scoring, RedisStore on the benchmark's private Redis, a counting
null sink). Run as its own process so nothing else the benchmark holds is counted:

    python -m bench.memory --redis redis://127.0.0.1:P/3 100000 1000000
The last line is JSON: {"rss_bytes": {N: bytes}, "growth_pct": ...}.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", required=True)
    ap.add_argument("checkpoints", type=int, nargs="+")
    args = ap.parse_args(argv)
    from bench.producer_bench import NullSink, make_watchlist
    from bench.services import rss_bytes
    from bench.workload import iter_domains_only_frames
    from scout.config import Settings
    from scout.counters import Counters
    from scout.producer.producer import Producer
    from scout.store import RedisStore

    store = RedisStore(args.redis)
    store.r.flushdb()
    s = dataclasses.replace(Settings(), cache_ttl=3600.0)
    p = Producer(s, NullSink(), store, Counters(), make_watchlist())
    marks = sorted(args.checkpoints)
    out: dict[int, int] = {}
    names = 0
    for n, text in enumerate(iter_domains_only_frames(marks[-1] + 10, seed=99)):
        p.handle_frame(text)
        names += text.count('","') + 1
        if n % 64 == 0:
            p.tick()
        while marks and names >= marks[0]:
            p.tick()
            gc.collect()
            out[marks.pop(0)] = rss_bytes()
        if not marks:
            break
    p.close()
    store.r.flushdb()
    keys = sorted(out)
    growth = (out[keys[-1]] - out[keys[0]]) / out[keys[0]] * 100
    print(json.dumps({"rss_bytes": {str(k): out[k] for k in keys}, "growth_pct": round(growth, 1),
                      "names": names}))


if __name__ == "__main__":
    main()

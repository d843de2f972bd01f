"""Helpers for the end-to-end WHOIS pipeline tests (tests/stages/test_whois.py).

Local WHOIS world: RDAP and port-43 servers that log when each lookup reached them, RDAP bootstrap files
pointing at them, an nsd serving public-looking addresses (8.8.8.x, documentation-free) plus Team Cymru's
`origin.asn.cymru.com` answers, Celery workers on their own queues, and small readers of the results.
Nothing here talks to anything but loopback.
"""
from __future__ import annotations

import os
import sys
import time
import zlib

from tests.conftest import redis_db
from tests.servers.rdap import RdapServer
from tests.servers.whois43 import Whois43Server

REDIS_DB5 = redis_db(5)


class TimedRdap(RdapServer):
    """An RdapServer that also records (monotonic time, peer, path) of every answered request."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.log: list[tuple[float, str, str]] = []

    def answer(self, h, mode, path, kw):
        with self.lock:
            self.log.append((time.monotonic(), h.client_address[0], path))
        super().answer(h, mode, path, kw)

    def paths(self, prefix: str = "") -> list[str]:
        with self.lock:
            return [p for _, _, p in self.log if p.startswith(prefix)]


class TimedWhois43(Whois43Server):
    """A Whois43Server that also records (monotonic time, domain) of every answered query."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.log: list[tuple[float, str]] = []

    def answer(self, sock, mode, domain, kw):
        with self.lock:
            self.log.append((time.monotonic(), domain))
        super().answer(sock, mode, domain, kw)


def route_of(root: str, ips: list[str]) -> str:
    """The source address scout.queues.lookup_route picks for a root (re-derived independently)."""
    return ips[zlib.crc32(root.encode()) % len(ips)]


def cymru_txt(ip: str, asn: str, cidr: str) -> str:
    rev = ".".join(reversed(ip.split(".")))
    return f'{rev}.origin IN TXT "{asn} | {cidr} | US | arin | 2023-12-28"'


def public_zones(records: dict[str, list[str]], cymru: list[str]) -> dict[str, str]:
    """nsd zones: records {zone: [relative records]} plus asn.cymru.com with the given origin TXT lines."""
    out = {}
    for zone, recs in records.items():
        out[zone] = "\n".join([f"@ 3600 IN SOA ns1.{zone} hostmaster.{zone} 2026112801 7200 3600 1209600 300",
                               f"@ 3600 IN NS ns1.{zone}", f"ns1.{zone} 3600 IN A 127.0.0.1"] + recs) + "\n"
    out["asn.cymru.com."] = "\n".join([
        "$TTL 300",
        "@ IN SOA ns.asn.cymru.com. hostmaster.asn.cymru.com. 2024112701 3600 600 86400 300",
        "@ IN NS ns.asn.cymru.com.", "ns IN A 127.0.0.1",
        'AS15169 IN TXT "15169 | US | arin | 2000-03-30 | GOOGLE, US"', *cymru]) + "\n"
    return out


def start_worker(workers, argv: list[str], label: str):
    """Start one real worker process from a full command line (kept and stopped by the `workers` fixture)."""
    return workers.start_argv(argv, label)


def start_core(workers, concurrency: int = 8):
    """One worker for the cheap queues (dns, whois, save): the `scout worker dns` line on three queues."""
    from scout.cli.worker import worker_argv
    from scout.config import load_settings

    argv = worker_argv(load_settings(workers.env, None), "dns", None, [])
    argv[argv.index("-Q") + 1] = "dns,whois,save"
    argv[argv.index("-c") + 1] = str(concurrency)
    argv[argv.index("-n") + 1] = f"core-{os.getpid()}-{len(workers.procs)}@%h"
    return start_worker(workers, argv, "core")


def start_lookup_cli(workers, ip: str | None = None):
    """A lookup worker started exactly as an operator would: `scout worker lookup [--ip IP]`."""
    argv = [sys.executable, "-m", "scout", "worker", "lookup"] + (["--ip", ip] if ip else [])
    argv += ["-n", f"lookup-{ip or 'default'}-{os.getpid()}-{len(workers.procs)}@%h"]
    return start_worker(workers, argv, f"lookup-{ip or 'default'}")


def counters(url: str = REDIS_DB5) -> dict[str, int]:
    from scout.store import RedisStore

    return RedisStore(url).counters()


def forget_seen(url: str = REDIS_DB5) -> int:
    """Drop the de-duplication memory (as if CACHE_TTL had passed) but keep the WHOIS caches."""
    import redis

    r = redis.Redis.from_url(url)
    keys = list(r.scan_iter("scout:seen:*", count=1000))
    return r.delete(*keys) if keys else 0


def wstatus(doc: dict) -> str | None:
    return (doc.get("domain_whois_parsed") or {}).get("status")


"""Servers the benchmark starts for itself on loopback, and stops: a private redis-server (so nothing is
flushed or measured on the machine's shared Redis) and nsd (rrl off: tests/servers/dns_nsd.py)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """`redis-server --port P --save ''` in its own process group; .url(db) -> redis://127.0.0.1:P/db."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PrivateRedis":
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            self.port = free_port()
            log = open(self.workdir / f"redis-{self.port}.log", "wb")
            self.proc = subprocess.Popen(
                [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir), "--daemonize", "no", "--maxclients", "2000"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.time() + 10
            while time.time() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as c:
                        c.sendall(b"PING\r\n")
                        if c.recv(16).startswith(b"+PONG"):
                            return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("private redis-server did not start")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0):
        import redis

        return redis.Redis.from_url(self.url(db))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


@contextmanager
def private_redis(workdir: Path):
    r = PrivateRedis(workdir).start()
    try:
        yield r
    finally:
        r.stop()


@contextmanager
def nsd(zones: dict[str, str], workdir: Path):
    """nsd serving `zones` (name -> text) on a free loopback port; yields 'host:port'."""
    from tests.servers.dns_nsd import start_nsd, stop_nsd

    proc, port = start_nsd(zones, workdir, wait=60)
    try:
        yield f"127.0.0.1:{port}", port
    finally:
        stop_nsd(proc)


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size now (VmRSS) of `pid` (default: this process)."""
    path = f"/proc/{pid or 'self'}/status"
    for line in open(path):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0

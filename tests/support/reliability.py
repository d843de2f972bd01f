"""Helpers for the reliability and fuzz tests: private servers that a test may stop, kill and restart
(never the shared ones), a hostile DNS responder, worker processes a test may SIGKILL, and Redis
inspection of the broker's unacked messages.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests.conftest import free_port, port_open, redis_db, wait_for, worker_command

RELIABILITY_REDIS = redis_db(9)


# ------------------------------------------------------------------ a private Redis

class PrivateRedis:
    """redis-server on a free loopback port, persisting every write (AOF, fsync always), so a kill and
    a restart keep what was queued — as production Redis must be configured."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.dir = Path(tmp) / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: port_open("127.0.0.1", self.port), timeout=20, message="private redis-server up")
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)


# ------------------------------------------------------------------ worker processes

class Proc:
    """A `scout worker` (celery) process in its own session, with its log."""

    def __init__(self, argv: list[str], env: dict, log: Path, preexec_fn=None, ready=b" ready."):
        self.log = log
        # Output through a pipe copied by this process: a worker under RLIMIT_FSIZE can still log.
        self.proc = subprocess.Popen(argv, env=env, cwd=str(log.parent), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec_fn)
        sink = open(log, "wb")

        def copy():
            for line in self.proc.stdout:
                sink.write(line)
                sink.flush()
            sink.close()

        threading.Thread(target=copy, daemon=True).start()
        if ready:
            deadline = time.time() + 60
            while ready not in log.read_bytes():
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop(signal.SIGKILL)
                    raise RuntimeError(f"{argv[:8]} not ready:\n{self.text()[-3000:]}")
                time.sleep(0.1)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def send(self, sig) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        self.send(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            return self.proc.wait(10)


def start_worker(env: dict, tmp: Path, stage: str, label: str, concurrency: int | None = None,
                 preexec_fn=None) -> Proc:
    """A real celery worker for `stage`, with `scout worker`'s command line."""
    return Proc(worker_command(env, stage, label, concurrency=concurrency), env, Path(tmp) / f"worker-{label}.log",
                preexec_fn=preexec_fn)


def scout_proc(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scout", *args], env=env, cwd=str(Path(log).parent),
                            stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True,
                            start_new_session=True)


# ------------------------------------------------------------------ broker inspection (Redis)

def unacked_by_queue(redis_url: str) -> dict[str, int]:
    """Messages a worker took and has not acknowledged yet (kombu's `unacked` hash), per routing key."""
    import redis

    out: dict[str, int] = {}
    for raw in redis.Redis.from_url(redis_url).hvals("unacked"):
        try:
            _msg, _exchange, routing_key = json.loads(raw)
        except ValueError:
            continue
        out[routing_key] = out.get(routing_key, 0) + 1
    return out


def last_delivery(redis_url: str) -> float:
    """When the newest unacknowledged message was handed to a worker (kombu's `unacked_index` scores):
    the visibility timeout counts from there, not from when a test killed the worker."""
    import redis

    scores = [score for _, score in redis.Redis.from_url(redis_url).zrange("unacked_index", 0, -1, withscores=True)]
    return max(scores) if scores else time.time()


def failed_domains(store) -> set[str]:
    return {d for e in store.list_failed() for d in e.get("domains", [])}


# ------------------------------------------------------------------ a hostile DNS responder

class HostileDNS:
    """UDP + TCP on one loopback port. What it answers depends on the first label of the question:

    silent (never answers), wrongid (right answer, wrong ID), garbage (random bytes), short (3 bytes),
    trunc (TC over UDP, then over TCP a length prefix promising more than it sends, then close),
    tcpgarbage (TC over UDP, then garbage framed over TCP), hugetxt (TC over UDP, a 60 KB TXT over TCP),
    cnameloop (a CNAME to itself, in every answer), othername (an answer for another name),
    badrcode (rcode 11 with records), fuzz (the bytes in `self.payload`, ID patched in), anything else:
    a plain A answer.
    """

    def __init__(self):
        self.payload = b""
        owner = self

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    head = self.request.recv(2)
                    if len(head) < 2:
                        return
                    (n,) = struct.unpack("!H", head)
                    data = b""
                    while len(data) < n:
                        chunk = self.request.recv(n - len(data))
                        if not chunk:
                            return
                        data += chunk
                    owner._tcp_answer(self.request, data)
                except OSError:
                    pass

        class TCPServer(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            # socketserver's default listen backlog is 5: a batch sends 18 TCP queries at once here, and
            # a dropped SYN is retried after 1 s, past the test's 500 ms DNS timeout.
            request_queue_size = 128

        # the UDP port is the system's pick; the same TCP port may be taken (by a connection's local end,
        # on a busy machine): pick again then
        for _ in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            try:
                self.tcp = TCPServer(("127.0.0.1", self.port), TCPHandler)
                break
            except OSError:
                self.udp.close()
        else:
            raise OSError("no loopback port free for both UDP and TCP")
        self._stop = False

    def start(self) -> "HostileDNS":
        threading.Thread(target=self.tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        threading.Thread(target=self._udp_loop, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop = True
        self.tcp.shutdown()
        self.tcp.server_close()
        self.udp.close()

    @staticmethod
    def _mode(q: dns.message.Message) -> str:
        return q.question[0].name.labels[0].decode(errors="replace") if q.question else ""

    def _answer(self, q: dns.message.Message, mode: str) -> bytes | None:
        qname, rdtype = q.question[0].name, q.question[0].rdtype
        r = dns.message.make_response(q)
        if mode == "silent":
            return None
        if mode == "garbage":
            return os.urandom(64)
        if mode == "short":
            return q.to_wire()[:3]
        if mode in ("trunc", "tcpgarbage", "hugetxt"):
            r.flags |= dns.flags.TC
            return r.to_wire()
        if mode == "cnameloop":
            r.answer.append(dns.rrset.from_text(qname, 60, "IN", "CNAME", qname.to_text()))
            return r.to_wire()
        if mode == "othername":
            r.answer.append(dns.rrset.from_text("victim.example.", 60, "IN", "A", "192.0.2.1"))
            return r.to_wire()
        if mode == "badrcode":
            r.set_rcode(11)
        if mode == "fuzz":
            return q.to_wire()[:2] + self.payload[2:]
        if rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(qname, 60, "IN", "A", "192.0.2.7"))
        wire = r.to_wire()
        if mode == "wrongid":
            wire = struct.pack("!H", (q.id + 1) & 0xFFFF) + wire[2:]
        return wire

    def _udp_loop(self) -> None:
        while not self._stop:
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            try:
                q = dns.message.from_wire(data)
                wire = self._answer(q, self._mode(q))
            except Exception:  # noqa: BLE001 - a hostile server answers nonsense, it never dies
                wire = os.urandom(12)
            if wire is not None:
                try:
                    self.udp.sendto(wire, peer)
                except OSError:
                    pass

    def _tcp_answer(self, sock: socket.socket, data: bytes) -> None:
        q = dns.message.from_wire(data)
        mode = self._mode(q)
        if mode == "trunc":
            sock.sendall(struct.pack("!H", 500) + b"\x00" * 10)   # promises 500 bytes, sends 10, closes
            return
        if mode == "tcpgarbage":
            junk = os.urandom(40)
            sock.sendall(struct.pack("!H", len(junk)) + junk)
            return
        r = dns.message.make_response(q)
        if mode == "hugetxt":
            strings = " ".join(f'"{"t" * 250}"' for _ in range(240))
            r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "TXT", strings))
        wire = r.to_wire(max_size=65535)
        sock.sendall(struct.pack("!H", len(wire)) + wire)

"""Servers nothing should reach, for tests of what a lookup refuses or gives up on.

    canary = Canary("127.0.0.3").start()    # records every TCP connection (peer), answers nothing, closes
    ... assert canary.connections == []

    hole = Blackhole("127.130.1.2", 4343).start()   # a listener whose accept queue is full: SYNs are
    ... hole.stop()                                 # dropped, so connect() hangs until its own timeout

    proxy = SlowProxy("127.0.0.1", 6379, delay=0.05).start()   # a client that cannot hurry

A Canary counts connections, not requests: a TLS handshake to a plain server or a port-43 query to an
HTTP canary is a connection all the same.
"""
from __future__ import annotations

import socket
import socketserver
import threading
import time

from tests.servers.base import LoopbackServer


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        owner: Canary = self.server.owner
        with owner.lock:
            owner.connections.append(self.client_address[0])


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


class Canary(LoopbackServer):
    server_class = _TCPServer
    handler_class = _Handler
    name = "canary"

    def __init__(self, host: str = "127.0.0.3", port: int = 0):
        super().__init__(host, port)
        self.connections: list[str] = []

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"


class Blackhole:
    """Listens with a backlog of 0 and fills it with one connection of its own: Linux then drops every
    further SYN to host:port (the accept queue is full), which is what a black-holed address looks like."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.listener = self.filler = None

    def start(self) -> "Blackhole":
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.listener.bind((self.host, self.port))
        except OSError:
            self.listener.close()
            raise
        self.listener.listen(0)
        self.filler = socket.create_connection((self.host, self.port), timeout=2)
        return self

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        for s in (self.filler, self.listener):
            if s is not None:
                s.close()


class SlowProxy:
    """A TCP proxy on loopback that holds every chunk a client sends for `delay` seconds before passing
    it on to host:port (answers come back at once): a client behind it cannot go faster than one round
    trip per `delay`, whatever the machine's load, so a test can act on it mid-way without racing it.

        proxy = SlowProxy("127.0.0.1", 6379, delay=0.05).start()   # redis://127.0.0.1:{proxy.port}/0
    """

    def __init__(self, host: str, port: int, delay: float):
        self.target, self.delay = (host, port), delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()

    def start(self) -> "SlowProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._pump, args=(client, upstream, self.delay), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, 0.0), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, delay: float) -> None:
        try:
            while chunk := src.recv(65536):
                if delay:
                    time.sleep(delay)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()

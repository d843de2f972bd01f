"""The part every threaded test server shares: its own socketserver in a daemon thread, start/stop,
`with` support, the port it got, and the routes (`route(key, mode, **kw)`, a `default` answer).

Where test servers live on loopback (scout.whois.targets refuses targets an answer names unless they are
global or inside WHOIS_ALLOW_NETWORKS): ordinary servers on 127.0.0.1, servers reached through a port-43
referral on an address of their own in REFERRAL_NET (port 4343: a referral may name 43 or 4343 only),
canaries (servers nothing may reach) on CANARY_HOST or, on a fixed port, in CANARY_NET: outside
ALLOW_NETWORKS.
"""
from __future__ import annotations

import errno
import ipaddress
import random
import threading

REFERRAL_NET = "127.128.0.0/9"
ALLOW_NETWORKS = f"127.0.0.1/32,{REFERRAL_NET}"     # WHOIS_ALLOW_NETWORKS of tests on loopback
CANARY_HOST = "127.0.0.3"
CANARY_NET = "127.64.0.0/10"                       # canaries on a fixed port (4343) pick an address here


class LoopbackServer:
    server_class: type  # a socketserver class taking (address, handler)
    handler_class: type
    name = "server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, require_peer: str | None = None):
        self.host = host
        self._requested_port = port
        self.require_peer = require_peer      # answer only this peer address (proves source binding)
        self.routes: dict[str, tuple[str, dict]] = {}
        self.default: tuple[str, dict] = ("notfound", {})   # the answer for unrouted keys
        self.lock = threading.Lock()
        self._server = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    def start(self):
        self._server = self.server_class((self.host, self._requested_port), self.handler_class)
        self._server.owner = self
        self._prepare(self._server)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"{self.name}-{self.port}", daemon=True).start()
        return self

    def _prepare(self, server) -> None:
        """Hook: adjust the socketserver before it serves (e.g. wrap its socket in TLS)."""

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def start_on_referral_port(cls, port: int = 4343, net: str = REFERRAL_NET, **kw):
    """Start `cls(host, port, **kw)` on port 4343 (or `port`) of a random address in `net` (REFERRAL_NET:
    allowed; CANARY_NET: not), so parallel test runs each find a free one."""
    rng = random.SystemRandom()
    network = ipaddress.ip_network(net)
    for _ in range(100):
        host = str(network[rng.randint(1, network.num_addresses - 2)])
        try:
            return cls(host=host, port=port, **kw).start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise RuntimeError(f"no free address in {REFERRAL_NET} for port {port}")

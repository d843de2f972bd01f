"""The part every threaded test server shares: its own socketserver in a daemon thread, start/stop,
`with` support, the port it got, and the routes (`route(key, mode, **kw)`, a `default` answer)."""
from __future__ import annotations

import threading


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
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"{self.name}-{self.port}", daemon=True).start()
        return self

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

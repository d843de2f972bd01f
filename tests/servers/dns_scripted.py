"""A UDP DNS server on loopback that answers from a script and records every query, for what a real
authoritative server (nsd, tests/servers/dns_nsd.py) cannot do: tell who asked, change its answer between
two queries (DNS rebinding), or never answer.

    dns = ScriptedDns({("rebind.hostile.test", "A"): [["127.0.0.1"], ["127.0.0.3"]],
                       ("silent.hostile.test", "A"): None}).start()
    ... dns.port, dns.queries -> [(peer, name, type)], dns.stop()

The n-th query for (name, type) gets the n-th answer of its list (the last one again after that), with
TTL 0 so nothing may cache it; None never answers. Other types of a scripted name answer NODATA, names
not in the script NXDOMAIN.
"""
from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class ScriptedDns:
    def __init__(self, script: dict, host: str = "127.0.0.1"):
        self.script = {(n.lower().rstrip("."), t.upper()): v for (n, t), v in script.items()}
        self.host = host
        self.queries: list[tuple[str, str, str]] = []
        self._asked: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self.sock = None

    def start(self) -> "ScriptedDns":
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.host, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"dns-scripted-{self.port}", daemon=True)
        self._thread.start()
        return self

    @property
    def server(self) -> str:
        """DNS_SERVER value for it."""
        return f"{self.host}:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            try:
                reply = self._reply(dns.message.from_wire(data), peer[0])
            except Exception:  # noqa: BLE001 - a malformed query gets no answer
                continue
            if reply is not None:
                self.sock.sendto(reply.to_wire(), peer)

    def _reply(self, q: dns.message.Message, peer: str):
        qname = q.question[0].name.to_text()
        name, rdtype = qname.lower().rstrip("."), dns.rdatatype.to_text(q.question[0].rdtype)
        self.queries.append((peer, name, rdtype))
        r = dns.message.make_response(q)
        key = (name, rdtype)
        if key not in self.script:
            if not any(n == name for n, _ in self.script):
                r.set_rcode(dns.rcode.NXDOMAIN)
            return r
        answers = self.script[key]
        if answers is None:
            return None
        n = self._asked.get(key, 0)
        self._asked[key] = n + 1
        r.answer.append(dns.rrset.from_text(qname, 0, "IN", rdtype, *answers[min(n, len(answers) - 1)]))
        return r

    def asked(self, name: str, rdtype: str = "A") -> int:
        return sum(1 for _, n, t in self.queries if n == name.lower().rstrip(".") and t == rdtype)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

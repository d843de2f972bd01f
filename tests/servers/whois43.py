"""A threaded port-43 WHOIS server for tests, with well-behaved and hostile answer modes.

    srv = Whois43Server().start()                 # 127.0.0.1, a free port
    srv.route("example.net", "thin", referral=f"127.0.0.1:{other.port}")
    srv.default = ("notfound", {})
    ... srv.queries -> [(peer_ip, query_text)], srv.stop()

Modes (the query's domain, lower-cased, picks the route; "domain X" / "=X" prefixes are stripped):
  iana       IANA-style TLD answer with `refer:` / `whois:` lines (kw: referral="host:port")
  thin       Verisign-style thin registry answer naming `Registrar WHOIS Server:` (kw: referral)
  registrar  a registrar's full answer (contacts, dates, name servers, statuses; kw name: about that
             domain instead of the one asked; kw referral: its `Registrar WHOIS Server:`, else itself)
  notfound   `No match for "X".` with the registry's notice text
  ratelimit  "WHOIS LIMIT EXCEEDED - SEE WWW.PIR.ORG/WHOIS FOR DETAILS" style refusal
  silent     reads the query and never answers (until the client goes away)
  drip       one byte every `interval` seconds (kw: interval=0.2)
  huge       50 MB of answer text (kw: size)
  garbage    random bytes, invalid UTF-8 and NULs
  selfref    refers to itself (`refer:` this server)
  text       a given answer (kw: text)

`require_peer` (an address) makes the server close, without an answer, connections from any other
peer address; every peer is recorded in `queries` either way.
"""
from __future__ import annotations

import os
import socket
import socketserver
import time

from tests.servers.base import LoopbackServer

THIN = """   Domain Name: {upper}
   Registry Domain ID: 2336799_DOMAIN_COM-VRSN
   Registrar WHOIS Server: {referral}
   Registrar URL: http://www.registrar.example
   Updated Date: 2024-08-14T07:01:34Z
   Creation Date: 1995-08-14T04:00:00Z
   Registry Expiry Date: 2025-08-13T04:00:00Z
   Registrar: RESERVED-Internet Assigned Numbers Authority
   Registrar IANA ID: 376
   Registrar Abuse Contact Email:
   Registrar Abuse Contact Phone:
   Domain Status: clientDeleteProhibited https://icann.org/epp#clientDeleteProhibited
   Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited
   Domain Status: clientUpdateProhibited https://icann.org/epp#clientUpdateProhibited
   Name Server: A.IANA-SERVERS.NET
   Name Server: B.IANA-SERVERS.NET
   DNSSEC: signedDelegation
   DNSSEC DS Data: 370 13 2 BE74359954660069D5C63D200C39F5603827D7DD02B56F120EE9F3A86764247C
   URL of the ICANN Whois Inaccuracy Complaint Form: https://www.icann.org/wicf/
>>> Last update of whois database: 2024-11-27T09:41:07Z <<<

For more information on Whois status codes, please visit https://icann.org/epp

NOTICE: The expiration date displayed in this record is the date the
registrar's sponsorship of the domain name registration in the registry is
currently set to expire. This date does not necessarily reflect the expiration
date of the domain name registrant's agreement with the sponsoring
registrar.  Users may consult the sponsoring registrar's Whois database to
view the registrar's reported date of expiration for this registration.

TERMS OF USE: You are not authorized to access or query our Whois
database through the use of electronic processes that are high-volume and
automated except as reasonably necessary to register domain names or
modify existing registrations.
"""

REGISTRAR = """Domain Name: {lower}
Registry Domain ID: 2336799_DOMAIN_COM-VRSN
Registrar WHOIS Server: {self_label}
Registrar URL: http://www.registrar.example
Updated Date: 2024-08-14T07:01:34Z
Creation Date: 1995-08-14T04:00:00Z
Registrar Registration Expiration Date: 2025-08-13T04:00:00Z
Registrar: Example Registrar, LLC
Registrar IANA ID: 9999
Registrar Abuse Contact Email: abuse@registrar.example
Registrar Abuse Contact Phone: +1.5555550100
Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited
Registry Registrant ID: REDACTED FOR PRIVACY
Registrant Name: REDACTED FOR PRIVACY
Registrant Organization: Internet Assigned Numbers Authority
Registrant Country: US
Registrant Email: Please query the RDDS service of the Registrar of Record identified in this output
Name Server: a.iana-servers.net
Name Server: b.iana-servers.net
Name Server: c.iana-servers.net
DNSSEC: signedDelegation
>>> Last update of WHOIS database: 2024-11-27T09:41:07Z <<<
"""

IANA = """% IANA WHOIS server
% for more information on IANA, visit http://www.iana.org
% This query returned 1 object

refer:        {referral}

domain:       {tld_upper}

organisation: Example Registry Services, LLC
address:      12061 Bluemont Way
address:      Reston VA 20190
address:      United States of America (the)

nserver:      A.GTLD-SERVERS.NET 192.5.6.30 2001:503:a83e:0:0:0:2:30
ds-rdata:     19718 13 2 8acbb0cd28f41250a80a491389424d341522d946b0da0c0291f2d3d771d7805a

whois:        {referral}

status:       ACTIVE
remarks:      Registration information: http://www.registry.example

created:      1985-01-01
changed:      2023-12-07
source:       IANA
"""

NOTFOUND = """No match for "{upper}".
>>> Last update of whois database: 2024-11-27T09:41:07Z <<<

NOTICE: The expiration date displayed in this record is the date the
registrar's sponsorship of the domain name registration in the registry is
currently set to expire.
"""

RATELIMIT = "WHOIS LIMIT EXCEEDED - SEE WWW.PIR.ORG/WHOIS FOR DETAILS\r\n"


def _domain_of(query: str) -> str:
    q = query.strip()
    low = q.lower()
    for prefix in ("domain ", "=", "-t dn,ace "):
        if low.startswith(prefix):
            q = q[len(prefix):]
            low = q.lower()
    return low.strip().rstrip(".")


class _Handler(socketserver.BaseRequestHandler):
    server: "_TCPServer"

    def handle(self):
        owner: Whois43Server = self.server.owner
        sock: socket.socket = self.request
        peer = self.client_address[0]
        sock.settimeout(5)
        data = b""
        try:
            while b"\n" not in data and len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            return
        query = data.decode("utf-8", errors="replace").strip()
        with owner.lock:
            owner.queries.append((peer, query))
        if owner.require_peer and peer != owner.require_peer:
            return
        domain = _domain_of(query)
        mode, kw = owner.routes.get(domain, owner.default)
        try:
            owner.answer(sock, mode, domain, kw)
        except OSError:
            pass  # the client went away: expected in the hostile modes


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128   # socketserver's 5 drops concurrent connects (SYN retried after 1 s)
    owner: "Whois43Server"


class Whois43Server(LoopbackServer):
    server_class = _TCPServer
    handler_class = _Handler
    name = "whois43"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, require_peer: str | None = None):
        super().__init__(host, port, require_peer)
        self.queries: list[tuple[str, str]] = []

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def route(self, domain: str, mode: str, **kw) -> "Whois43Server":
        self.routes[domain.lower().rstrip(".")] = (mode, kw)
        return self

    # ------------------------------------------------------------ answers

    def answer(self, sock: socket.socket, mode: str, domain: str, kw: dict) -> None:
        upper = domain.upper()
        if mode == "iana":
            tld = domain.rsplit(".", 1)[-1].upper()
            sock.sendall(IANA.format(referral=kw.get("referral", ""), tld_upper=tld).encode())
        elif mode == "thin":
            sock.sendall(THIN.format(upper=upper, referral=kw.get("referral", "")).encode())
        elif mode == "registrar":
            sock.sendall(REGISTRAR.format(lower=kw.get("name", domain),
                                          self_label=kw.get("referral", self.label)).encode())
        elif mode == "notfound":
            sock.sendall(NOTFOUND.format(upper=upper).encode())
        elif mode == "ratelimit":
            sock.sendall(RATELIMIT.encode())
        elif mode == "silent":
            self._wait_for_close(sock, kw.get("max_wait", 30.0))
        elif mode == "drip":
            interval = float(kw.get("interval", 0.2))
            body = THIN.format(upper=upper, referral="").encode()
            end = time.monotonic() + float(kw.get("max_wait", 30.0))
            for i in range(len(body)):
                if self._stopping.is_set() or time.monotonic() > end:
                    break
                sock.sendall(body[i:i + 1])
                time.sleep(interval)
        elif mode == "huge":
            size = int(kw.get("size", 50 * 1024 * 1024))
            line = (b"Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited"
                    b"                                      \r\n")
            block = line * (65536 // len(line))
            sent = 0
            while sent < size and not self._stopping.is_set():
                sock.sendall(block)
                sent += len(block)
        elif mode == "garbage":
            rnd = os.urandom(4096)
            sock.sendall(b"\xff\xfe\x00\x00" + rnd + b"\xc3\x28\xa0\xa1\xe2\x28\xa1\x00\x00")
        elif mode == "selfref":
            sock.sendall(f"% self-referring server\n\nrefer:        {self.label}\n".encode())
        elif mode == "text":
            text = kw["text"]
            sock.sendall(text.encode() if isinstance(text, str) else text)
        else:
            raise ValueError(f"unknown mode {mode!r}")

    def _wait_for_close(self, sock: socket.socket, max_wait: float) -> None:
        end = time.monotonic() + max_wait
        sock.settimeout(0.2)
        while time.monotonic() < end and not self._stopping.is_set():
            try:
                if not sock.recv(1024):
                    return
            except socket.timeout:
                continue

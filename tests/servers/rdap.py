"""A threaded HTTP server speaking RDAP for tests, with well-behaved and hostile modes.

    srv = RdapServer().start()                       # 127.0.0.1, a free port; srv.base -> "http://127.0.0.1:P/"
    srv.route("/com/domain/example.com", "domain", related=srv.base + "registrar/domain/example.com")
    srv.route("/registrar/domain/example.com", "registrar_domain")
    srv.route("/arin/ip/8.8.8.8", "ip", sample=ARIN_8_8_8)
    ... srv.requests -> [(peer_ip, path)], srv.stop()

Modes: domain (kw related: a related link), registrar_domain (kw name), ip (kw sample: a network object), json
(kw obj, status), notfound, too_many (429, kw retry_after), status (kw code, body, headers), invalid_json,
redirect (kw location, code), redirect_loop,
huge (kw size, with_length), drip (kw interval, where="body"|"headers").
Unrouted paths answer `srv.default` (mode, kw): 404 with an RDAP error object unless set, e.g.
`srv.default = ("domain", {})` answers every domain. `require_peer` answers 403 to any other peer.
"""
from __future__ import annotations

import copy
import json
import ssl
import time
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers.base import ALLOW_NETWORKS, LoopbackServer

RDAP_TYPE = "application/rdap+json"


def registry_domain(name: str, self_url: str, related: str | None) -> dict:
    """A Verisign-style thin registry answer: registrar entity, events, name servers, EPP statuses."""
    upper = name.upper()
    links = [{"value": self_url, "rel": "self", "href": self_url, "type": RDAP_TYPE}]
    if related:
        links.append({"value": related, "rel": "related", "href": related, "type": RDAP_TYPE})
    return {
        "objectClassName": "domain",
        "handle": "2336799_DOMAIN_COM-VRSN",
        "ldhName": upper,
        "links": links,
        "status": ["client delete prohibited", "client transfer prohibited", "client update prohibited"],
        "entities": [{
            "objectClassName": "entity",
            "handle": "376",
            "roles": ["registrar"],
            "publicIds": [{"type": "IANA Registrar ID", "identifier": "376"}],
            "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                     ["fn", {}, "text", "RESERVED-Internet Assigned Numbers Authority"]]],
            "entities": [{
                "objectClassName": "entity",
                "roles": ["abuse"],
                "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", ""],
                                         ["tel", {"type": "voice"}, "uri", "tel:"],
                                         ["email", {}, "text", ""]]],
            }],
        }],
        "events": [
            {"eventAction": "registration", "eventDate": "1995-08-14T04:00:00Z"},
            {"eventAction": "expiration", "eventDate": "2025-08-13T04:00:00Z"},
            {"eventAction": "last changed", "eventDate": "2024-08-14T07:01:34Z"},
            {"eventAction": "last update of RDAP database", "eventDate": "2024-11-27T09:41:07Z"},
        ],
        "secureDNS": {"delegationSigned": True, "dsData": [{
            "keyTag": 370, "algorithm": 13, "digestType": 2,
            "digest": "BE74359954660069D5C63D200C39F5603827D7DD02B56F120EE9F3A86764247C"}]},
        "nameservers": [
            {"objectClassName": "nameserver", "ldhName": "A.IANA-SERVERS.NET"},
            {"objectClassName": "nameserver", "ldhName": "B.IANA-SERVERS.NET."},
        ],
        "rdapConformance": ["rdap_level_0", "icann_rdap_technical_implementation_guide_1",
                            "icann_rdap_response_profile_1"],
        "notices": [{"title": "Terms of Use", "description": ["Service subject to Terms of Use."],
                     "links": [{"href": "https://www.registry.example/rdap-terms", "type": "text/html"}]}],
    }


def registrar_domain(name: str, self_url: str) -> dict:
    """A registrar's (thick) answer: registrant/tech entities, its own dates, one more name server."""
    return {
        "objectClassName": "domain",
        "handle": "2336799_DOMAIN_COM-VRSN",
        "ldhName": name.lower(),
        "links": [{"value": self_url, "rel": "self", "href": self_url, "type": RDAP_TYPE}],
        "status": ["client transfer prohibited", "client renew prohibited"],
        "entities": [
            {"objectClassName": "entity", "handle": "9999", "roles": ["registrar"],
             "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                      ["fn", {}, "text", "Example Registrar, LLC"]]]},
            {"objectClassName": "entity", "handle": "REDACTED", "roles": ["registrant"],
             "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", ""],
                                      ["org", {}, "text", "Internet Assigned Numbers Authority"],
                                      ["adr", {"cc": "US"}, "text", ["", "", "", "", "CA", "", "US"]]]],
             "remarks": [{"title": "REDACTED FOR PRIVACY", "type": "object redacted due to authorization"}]},
        ],
        "events": [
            {"eventAction": "registration", "eventDate": "1995-08-14T04:00:00Z"},
            {"eventAction": "expiration", "eventDate": "2025-08-13T04:00:00Z"},
        ],
        "nameservers": [
            {"objectClassName": "nameserver", "ldhName": "a.iana-servers.net"},
            {"objectClassName": "nameserver", "ldhName": "b.iana-servers.net"},
            {"objectClassName": "nameserver", "ldhName": "c.iana-servers.net"},
        ],
        "rdapConformance": ["rdap_level_0"],
    }


def _vcard_org(fn: str, label: str) -> list:
    return ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", fn],
                      ["adr", {"label": label}, "text", ["", "", "", "", "", "", ""]],
                      ["kind", {}, "text", "org"]]]


# An ARIN-style direct allocation (cidr0 extension, no country on the network).
ARIN_8_8_8 = {
    "rdapConformance": ["nro_rdap_profile_0", "rdap_level_0", "cidr0", "arin_originas0"],
    "notices": [{"title": "Terms of Service", "description": ["By using the ARIN RDAP/Whois service, you are agreeing to the RDAP/Whois Terms of Use"]}],
    "handle": "NET-8-8-8-0-2",
    "startAddress": "8.8.8.0",
    "endAddress": "8.8.8.255",
    "ipVersion": "v4",
    "name": "GOGL",
    "type": "DIRECT ALLOCATION",
    "parentHandle": "NET-8-0-0-0-2",
    "events": [{"eventAction": "last changed", "eventDate": "2023-12-28T17:24:56-05:00"},
               {"eventAction": "registration", "eventDate": "2023-12-28T17:24:33-05:00"}],
    "entities": [{
        "handle": "GOGL",
        "vcardArray": _vcard_org("Google LLC", "1600 Amphitheatre Parkway\nMountain View\nCA\n94043\nUnited States"),
        "roles": ["registrant"],
        "objectClassName": "entity",
        "events": [{"eventAction": "last changed", "eventDate": "2019-10-31T15:45:45-04:00"}],
    }],
    "port43": "whois.arin.net",
    "status": ["active"],
    "objectClassName": "ip network",
    "cidr0_cidrs": [{"v4prefix": "8.8.8.0", "length": 24}],
    "arin_originas0_originautnums": [],
}

# A RIPE-style assignment (range only, country on the network).
RIPE_193_0_0 = {
    "handle": "193.0.0.0 - 193.0.7.255",
    "name": "RIPE-NCC",
    "type": "ASSIGNED PA",
    "country": "NL",
    "ipVersion": "v4",
    "startAddress": "193.0.0.0",
    "endAddress": "193.0.7.255",
    "parentHandle": "193.0.0.0 - 193.0.23.255",
    "objectClassName": "ip network",
    "status": ["active"],
    "entities": [{"handle": "ORG-RIEN1-RIPE", "roles": ["registrant"], "objectClassName": "entity",
                  "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)"],
                                           ["kind", {}, "text", "org"]]]}],
    "events": [{"eventAction": "last changed", "eventDate": "2023-05-12T09:18:08Z"}],
    "rdapConformance": ["cidr0", "rdap_level_0", "nro_rdap_profile_0", "redacted"],
    "port43": "whois.ripe.net",
}

ARIN_2001_4860 = {
    "rdapConformance": ["nro_rdap_profile_0", "rdap_level_0", "cidr0"],
    "handle": "NET6-2001-4860-1",
    "startAddress": "2001:4860::",
    "endAddress": "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff",
    "ipVersion": "v6",
    "name": "GOOGLE-IPV6",
    "type": "DIRECT ALLOCATION",
    "parentHandle": "NET6-2001-4800-0",
    "entities": [{"handle": "GOGL", "roles": ["registrant"], "objectClassName": "entity",
                  "vcardArray": _vcard_org("Google LLC", "1600 Amphitheatre Parkway\nMountain View\nCA\n94043\nUnited States")}],
    "status": ["active"],
    "objectClassName": "ip network",
    "cidr0_cidrs": [{"v6prefix": "2001:4860::", "length": 32}],
    "port43": "whois.arin.net",
}


class _Handler(BaseHTTPRequestHandler):
    server: "_HTTPServer"
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        owner: RdapServer = self.server.owner
        peer = self.client_address[0]
        path = self.path.split("?", 1)[0]
        with owner.lock:
            owner.requests.append((peer, path))
        if owner.require_peer and peer != owner.require_peer:
            return self._send(403, {"errorCode": 403, "title": "wrong peer"})
        mode, kw = owner.routes.get(path, owner.default)
        try:
            owner.answer(self, mode, path, kw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, code: int, obj=None, body: bytes | None = None, headers: dict | None = None,
              ctype: str = RDAP_TYPE):
        if body is None:
            body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128   # socketserver's 5 drops concurrent connects (SYN retried after 1 s)
    owner: "RdapServer"


class RdapServer(LoopbackServer):
    server_class = _HTTPServer
    handler_class = _Handler
    name = "rdap"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, require_peer: str | None = None,
                 tls: ssl.SSLContext | None = None):
        super().__init__(host, port, require_peer)
        self.requests: list[tuple[str, str]] = []
        self.tls = tls          # serve https with this context (tests/servers/tls.py)

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/"

    def _prepare(self, server) -> None:
        if self.tls is not None:
            # The handshake happens in the handler thread, on the first read; a client that refuses the
            # certificate just ends that connection.
            server.socket = self.tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
            server.handle_error = lambda request, client_address: None

    def route(self, path: str, mode: str, **kw) -> "RdapServer":
        self.routes[path] = (mode, kw)
        return self

    def answer(self, h: _Handler, mode: str, path: str, kw: dict) -> None:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        url = self.base.rstrip("/") + path
        if mode == "domain":
            h._send(200, registry_domain(name, url, kw.get("related")))
        elif mode == "registrar_domain":   # kw name: answer about that domain instead
            h._send(200, registrar_domain(kw.get("name", name), url))
        elif mode == "ip":
            obj = copy.deepcopy(kw["sample"])
            obj.setdefault("links", [{"value": url, "rel": "self", "href": url, "type": RDAP_TYPE}])
            h._send(200, obj)
        elif mode == "json":
            h._send(kw.get("status", 200), kw["obj"])
        elif mode == "notfound":
            h._send(404, {"errorCode": 404, "title": "Not Found",
                          "description": ["The requested object was not found."]})
        elif mode == "too_many":
            h._send(429, {"errorCode": 429, "title": "Too Many Requests"},
                    headers={"Retry-After": str(kw.get("retry_after", 120))})
        elif mode == "status":
            body = kw.get("body", "")
            h._send(kw["code"], body=body.encode() if isinstance(body, str) else body,
                    headers=kw.get("headers"), ctype=kw.get("ctype", RDAP_TYPE))
        elif mode == "invalid_json":
            h._send(200, body=b'{"objectClassName": "domain", "ldhName": "EXAMPLE.COM", "events": [\xff\xfe')
        elif mode == "redirect":
            h.send_response(int(kw.get("code", 302)))
            h.send_header("Location", kw["location"])
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif mode == "redirect_loop":
            h.send_response(302)
            h.send_header("Location", path)
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif mode == "huge":
            size = int(kw.get("size", 50 * 1024 * 1024))
            h.send_response(200)
            h.send_header("Content-Type", RDAP_TYPE)
            if kw.get("with_length", False):
                h.send_header("Content-Length", str(size))
            h.end_headers()
            block = b'{"padding": "' + b"x" * 65500 + b'"},\n'
            sent = 0
            while sent < size and not self._stopping.is_set():
                h.wfile.write(block)
                sent += len(block)
        elif mode == "drip":
            interval = float(kw.get("interval", 0.2))
            end = time.monotonic() + float(kw.get("max_wait", 30.0))
            body = json.dumps(registry_domain(name, url, None)).encode()
            if kw.get("where") == "headers":
                head = (f"HTTP/1.0 200 OK\r\nContent-Type: {RDAP_TYPE}\r\n"
                        + "".join(f"X-Pad-{i}: {'y' * 40}\r\n" for i in range(200)) + "\r\n").encode()
                data = head + body
            else:
                h.send_response(200)
                h.send_header("Content-Type", RDAP_TYPE)
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.flush()
                data = body
            for i in range(len(data)):
                if self._stopping.is_set() or time.monotonic() > end:
                    break
                h.wfile.write(data[i:i + 1])
                h.wfile.flush()
                time.sleep(interval)
        else:
            raise ValueError(f"unknown mode {mode!r}")


def write_bootstrap(d: Path, rdap_tlds: dict[str, str], ipv4: dict[str, str] | None = None,
                    ipv6: dict[str, str] | None = None) -> Path:
    """IANA RDAP bootstrap files (RFC 9224) in `d`: rdap_tlds {tld: base URL}, ipv4 / ipv6 {cidr: base
    URL}. TLDs not listed have no RDAP (port 43)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    head = {"version": "1.0", "publication": "2026-10-01T00:00:00Z", "description": "test"}

    def services(entries: dict[str, str]) -> list:
        by_base: dict[str, list[str]] = {}
        for key, base in entries.items():
            by_base.setdefault(base, []).append(key)
        return [[keys, [base]] for base, keys in by_base.items()]

    for name, entries in (("dns.json", rdap_tlds), ("ipv4.json", ipv4 or {}), ("ipv6.json", ipv6 or {})):
        (d / name).write_text(json.dumps(dict(head, services=services(entries))))
    return d


def rdap_bootstrap(tmp: Path, base: str) -> dict:
    """RDAP bootstrap files sending every test TLD to `base`; -> env for WHOIS on loopback only."""
    tlds = ["example", "test", "invalid", "com", "net", "org"]
    boot = write_bootstrap(Path(tmp) / "bootstrap", dict.fromkeys(tlds, base), {"0.0.0.0/0": base}, {"::/0": base})
    return {"RDAP_BOOTSTRAP_DIR": str(boot), "WHOIS_REFERRAL_SERVER": "127.0.0.1:9",
            "WHOIS_ALLOW_NETWORKS": ALLOW_NETWORKS,
            "DOMAIN_WHOIS_RATE": "20ms", "IP_WHOIS_RATE": "20ms", "WHOIS_TIMEOUT": "2s"}

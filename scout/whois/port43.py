"""A small port-43 WHOIS client (RFC 3912) with a total deadline, a size cap and a bindable source.

python-whois's NICClient fixes the port at 43 and cannot bind a source address; this one takes
`host:port` and `source_ip`, and connects only to an address scout.whois.targets checked. Every read
waits at most until the call's deadline, so a server that drips a byte a second cannot hold it past
`timeout`.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import time

from .errors import LookupFailed
from .http import decode_text
from .targets import Target, connect

DEFAULT_PORT = 43

# Registries that want a keyword in front of the name (a bare name also matches hosts and registrars).
_QUERY_FORMATS = {
    "whois.verisign-grs.com": "domain {name}",
    "whois.crsnic.net": "domain {name}",
    "whois.denic.de": "-T dn,ace {name}",
    "whois.jprs.jp": "{name}/e",
}


def parse_server(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """'whois.example.net', 'whois.example.net:4343', 'whois://host:43/', '[2001:db8::1]:43', '::1'
    -> (host, port). Raises ValueError for an unusable value."""
    t = (text or "").strip()
    for prefix in ("whois://", "rwhois://"):
        if t.lower().startswith(prefix):
            t = t[len(prefix):]
    t = t.rstrip("/").strip()
    host, port = t, default_port
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ValueError(f"bad server {text!r}")
        host, rest = t[1:end], t[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"bad server {text!r}")
            port = int(rest[1:])
    elif t.count(":") == 1:
        host, p = t.split(":")
        if not p.isdigit():
            raise ValueError(f"bad server {text!r}")
        port = int(p)
    elif t.count(":") > 1:
        ipaddress.IPv6Address(t)  # bare IPv6 address; raises ValueError otherwise
    if not host or not (0 < port < 65536) or not re.fullmatch(r"[A-Za-z0-9.\-_:]+", host):
        raise ValueError(f"bad server {text!r}")
    return host.lower().rstrip("."), port


def format_server(host: str, port: int) -> str:
    h = f"[{host}]" if ":" in host else host
    return h if port == DEFAULT_PORT else f"{h}:{port}"


def query_text(host: str, name: str) -> str:
    return _QUERY_FORMATS.get(host.lower(), "{name}").format(name=name)


def whois_query(target: Target, query: str, *, timeout: float, max_bytes: int,
                source_ip: str | None = None, deadline: float | None = None) -> str:
    """Send `query` to the target (one of its checked addresses, see scout.whois.targets) and read the
    whole answer (until the server closes).

    Raises LookupFailed("timeout" | "response too large" | "connection failed" | "connection error").
    """
    end = time.monotonic() + timeout
    if deadline is not None:
        end = min(end, deadline)
    sock = connect(target, end, source_ip)
    try:
        data = bytearray()
        try:
            sock.settimeout(max(0.001, end - time.monotonic()))
            sock.sendall(query.encode("utf-8") + b"\r\n")
            while True:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise LookupFailed("timeout")
                sock.settimeout(remaining)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > max_bytes:
                    raise LookupFailed("response too large")
        except (socket.timeout, TimeoutError):
            raise LookupFailed("timeout") from None
        except ConnectionResetError:
            if not data:
                raise LookupFailed("connection error") from None
            # Some servers reset instead of closing after the answer: keep what arrived.
        except OSError:
            raise LookupFailed("connection error") from None
        return decode_text(bytes(data))
    finally:
        try:
            sock.close()
        except OSError:
            pass

"""Which servers a WHOIS/RDAP lookup may connect to, and a connection to exactly the address checked.

Every RDAP and WHOIS answer comes from a server the operator does not control, and port 43 is plaintext
(anyone on the path can rewrite a referral). So:

- Targets **configured by the operator** are trusted: WHOIS_REFERRAL_SERVER, the RDAP bootstrap's base
  URLs, the IANA bootstrap files' URL.
- Targets **learned from an answer** are not: RDAP `related` links, HTTP redirects of any RDAP request,
  port-43 `refer:` / `whois:` / `Registrar WHOIS Server:` referrals. One is connected to only when
    * its host name resolves to addresses that are all global unicast, or inside WHOIS_ALLOW_NETWORKS;
    * an RDAP URL is https (http only when every address is inside WHOIS_ALLOW_NETWORKS);
    * a port-43 referral names port 43 or 4343;
    * the lookup has followed fewer than MAX_HOPS learned targets, and the host is one of at most
      MAX_HOSTS distinct hosts beyond the registry.

Every host name, trusted or learned, is resolved here, once, through DNS_SERVER (dnspython, never the
system resolver) and from the lookup's source address; the connection then goes to an address of that
very answer, so nothing can rebind the name between the check and the connect. TLS keeps the host name
for SNI and the certificate check (scout.whois.http pins the address under it).

A refusal raises `TargetRefused`, a `LookupFailed` whose reason starts with "refused: ".
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import dns.exception
import dns.nameserver
import dns.resolver

from .errors import LookupFailed

log = logging.getLogger(__name__)

MAX_HOPS = 3            # learned targets one lookup may follow
MAX_HOSTS = 2           # distinct hosts beyond the registry one lookup may reach
WHOIS_PORTS = (43, 4343)


class TargetRefused(LookupFailed):
    """A learned target the lookup will not connect to; `reason` is "refused: <why>"."""

    def __init__(self, why: str):
        super().__init__(f"refused: {why}")


@dataclass
class Target:
    host: str                   # the name as given (SNI, Host header, labels), lower case, no brackets
    port: int
    addresses: list[str]        # checked addresses: connect to these, never to the name


def dns_resolver(settings, source_ip: str | None):
    """A dnspython resolver asking DNS_SERVER (no cache: an answer is checked where it is used), and the
    source address to ask from (None when it is of another family than the DNS servers)."""
    res = dns.resolver.Resolver(configure=False)
    servers = list(settings.dns_servers) or [("127.0.0.1", 53)]
    res.nameservers = [dns.nameserver.Do53Nameserver(str(h), int(p)) for h, p in servers]
    res.timeout = float(settings.dns_timeout)
    res.lifetime = float(settings.dns_timeout) * (1 + int(getattr(settings, "dns_retries", 0) or 0))
    res.cache = None
    source = None
    if source_ip:
        fam = ipaddress.ip_address(source_ip).version
        if all(ipaddress.ip_address(h).version == fam for h, _ in servers):
            source = source_ip
    return res, source


def _plain(addr):
    """An IPv4-mapped IPv6 address is the IPv4 address it carries."""
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_global_unicast(addr) -> bool:
    """True for an address on the public Internet that is not multicast (nor loopback, private,
    link-local, shared, documentation, reserved, or a 6to4 address wrapping one of those)."""
    a = _plain(ipaddress.ip_address(addr))
    if not a.is_global or a.is_multicast or a.is_reserved or a.is_unspecified:
        return False
    if a.version == 6 and a.sixtofour is not None:
        return is_global_unicast(a.sixtofour)
    return True


def in_networks(addr, networks) -> bool:
    a = _plain(ipaddress.ip_address(addr))
    return any(a.version == n.version and a in n for n in networks)


@dataclass
class Guard:
    """The targets of one lookup: resolves every host, checks learned ones, counts hops and hosts.

    `registry` is the registry's host or base URL (RDAP: the bootstrap server); for port 43 it is the
    first learned hop admitted with `registry=True` (the server the referral server names), or the
    referral server itself when it answers with the registration (the caller sets it then)."""

    settings: object
    source_ip: str | None = None
    registry: str | None = None
    hops: int = 0
    hosts: set = field(default_factory=set)
    refused: list = field(default_factory=list)     # "target: reason", in order

    def __post_init__(self):
        self.allow = tuple(getattr(self.settings, "whois_allow_networks", ()) or ())
        if self.registry and "://" in self.registry:   # a base URL: its host
            self.registry = urlsplit(self.registry).hostname
        self.registry = host_key(self.registry) if self.registry else None

    # ------------------------------------------------------------ admitting targets

    def trusted(self, host: str, port: int, end: float) -> Target:
        """A target the operator configured: resolved here, never checked."""
        return Target(host_key(host), port, self.resolve(host, end))

    def trusted_url(self, url: str, end: float) -> Target:
        scheme, host, port = _url_parts(url)
        if scheme not in ("http", "https"):
            raise LookupFailed("bad url scheme")
        return self.trusted(host, port, end)

    def learned_url(self, url: str, end: float) -> Target:
        """An RDAP URL an answer named (related link, redirect)."""
        try:
            scheme, host, port = _url_parts(url)
        except ValueError:
            raise self._refuse(url, "unreadable url") from None
        if scheme not in ("http", "https"):
            raise self._refuse(url, f"scheme {scheme or 'none'}")
        if scheme == "http" and not self.allow:
            raise self._refuse(url, "http (https required)")
        target = self._admit(url, host, port, end, registry=False)
        if scheme == "http" and not all(in_networks(a, self.allow) for a in target.addresses):
            raise self._refuse(url, "http (https required outside WHOIS_ALLOW_NETWORKS)")
        return target

    def learned_whois(self, host: str, port: int, end: float, registry: bool = False) -> Target:
        """A port-43 server an answer referred to; `registry`: the registry the referral server named."""
        label = f"{host}:{port}"
        if port not in WHOIS_PORTS:
            raise self._refuse(label, f"port {port} (43 and 4343 only)")
        return self._admit(label, host, port, end, registry)

    def _admit(self, label: str, host: str, port: int, end: float, registry: bool) -> Target:
        key = host_key(host)
        if self.hops >= MAX_HOPS:
            raise self._refuse(label, f"more than {MAX_HOPS} hops")
        if registry and self.registry is None:
            self.registry = key
        beyond = key != self.registry and key not in self.hosts
        if beyond and len(self.hosts) >= MAX_HOSTS:
            raise self._refuse(label, f"more than {MAX_HOSTS} hosts beyond the registry")
        self.hops += 1
        addresses = self.resolve(host, end)
        bad = [a for a in addresses if not (is_global_unicast(a) or in_networks(a, self.allow))]
        if bad:
            raise self._refuse(label, f"address {bad[0]} not allowed")
        if beyond:
            self.hosts.add(key)
        return Target(key, port, addresses)

    def _refuse(self, label: str, why: str) -> TargetRefused:
        # The label comes from an answer: printable and short before it reaches a log line or a document.
        label = "".join(c if c.isprintable() else "?" for c in label[:200])
        self.refused.append(f"{label}: {why}")
        log.warning("WHOIS/RDAP target named by an answer refused: %s (%s)", label, why)
        return TargetRefused(why)

    # ------------------------------------------------------------ resolving

    def resolve(self, host: str, end: float) -> list[str]:
        """Addresses of `host` through DNS_SERVER (A, and AAAA unless the source address is IPv4),
        from the source address, within `end` (monotonic). An address literal is itself."""
        h = host.strip("[]")
        try:
            return [str(_plain(ipaddress.ip_address(h)))]
        except ValueError:
            pass
        res, source = dns_resolver(self.settings, self.source_ip)
        families = ["A", "AAAA"]
        if self.source_ip:
            families = ["A"] if ipaddress.ip_address(self.source_ip).version == 4 else ["AAAA"]
        out: list[str] = []
        for rdtype in families:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise LookupFailed("timeout")
            res.lifetime = min(res.lifetime, remaining)
            try:
                answer = res.resolve(h, rdtype, source=source, search=False)
            except dns.resolver.NXDOMAIN:
                raise LookupFailed("unknown host") from None
            except dns.resolver.NoAnswer:
                continue
            except dns.exception.Timeout:
                raise LookupFailed("dns timeout") from None
            except (dns.exception.DNSException, OSError, ValueError):
                raise LookupFailed("dns failure") from None
            out += [str(_plain(ipaddress.ip_address(r.address))) for r in answer]
        if not out:
            raise LookupFailed("unknown host")
        return out


def host_key(host: str) -> str:
    """How hosts are compared: lower case, no brackets, no trailing dot."""
    return host.strip("[]").lower().rstrip(".")


def _url_parts(url: str) -> tuple[str, str, int]:
    """-> (scheme, host, port); ValueError when the URL has no host or a bad port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, host_key(host), port


def connect(target: Target, end: float, source_ip: str | None = None) -> socket.socket:
    """A TCP connection to one of the target's checked addresses (in order), by `end` (monotonic).
    Raises LookupFailed("timeout" | "connection failed")."""
    reason = "connection failed"
    for addr in target.addresses:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise LookupFailed("timeout")
        if source_ip and ipaddress.ip_address(source_ip).version != ipaddress.ip_address(addr).version:
            continue
        try:
            return socket.create_connection((addr, target.port), timeout=remaining,
                                            source_address=(source_ip, 0) if source_ip else None)
        except (socket.timeout, TimeoutError):
            reason = "timeout"
        except OSError:
            reason = "connection failed"
    raise LookupFailed(reason)

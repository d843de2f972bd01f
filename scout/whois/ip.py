"""IP WHOIS: the RIR's RDAP network object (server from the IANA ipv4/ipv6 bootstrap, parsed with
ipwhois's RDAP reader) plus ASN fields from Team Cymru's DNS service, asked through DNS_SERVER. ASN
data is per address: `asn_cidr` always contains the address asked about (Cymru records about other
prefixes are ignored), and an answer covers only the part of the RDAP network inside that prefix.

`lookup_ip(ip, settings, source_ip=None)` returns

    {"raw": str,     # the RDAP JSON text as received, or a one-line summary when there is none
     "info": {"asn", "asn_cidr", "asn_description", "asn_country", "asn_registry", "asn_status",
              "network_cidr", "network_name", "network_handle", "country", "server",
              "status": "ok" | "not_found" | "reserved" | "error: <reason>"},
     "cover": str,   # the CIDR the answer holds for: the narrower of the RDAP network and the BGP
                     # prefix (asn_cidr), else the address itself as /32 or /128; a cache keyed on it
                     # serves later addresses inside it, whose ASN fields are then true too
     "refused": [str]}   # targets named by the answer (redirects) that were refused (scout.whois.targets)

and raises only `RateLimited`. Reserved addresses (private, loopback, link-local, documentation,
shared, multicast, ...) are answered at once with status "reserved" and no network traffic.
"""
from __future__ import annotations

import functools
import ipaddress
import logging

import dns.exception
import dns.resolver

from .bootstrap import get_bootstrap
from .errors import LookupFailed
from .rdap import RdapNotFound, fetch_rdap, network_cover
from .targets import Guard, dns_resolver

log = logging.getLogger(__name__)

_MIN_COVER_PREFIX = {4: 8, 6: 12}


def _addr(ip: str):
    addr = ipaddress.ip_address(str(ip).strip())
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr


@functools.lru_cache(maxsize=1 << 16)
def is_reserved(ip: str) -> bool:
    """True for addresses no registry answers for (what ipwhois's IPWhois() refuses, and more).
    Cached: ipwhois's test builds a dozen networks per call, and the stream repeats addresses."""
    try:
        addr = _addr(ip)
    except ValueError:
        return False
    if (not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified
            or addr.is_loopback or addr.is_link_local or addr.is_private):
        return True
    from ipwhois.utils import ipv4_is_defined, ipv6_is_defined
    try:
        defined = ipv4_is_defined(str(addr)) if addr.version == 4 else ipv6_is_defined(str(addr))
    except Exception:  # noqa: BLE001
        return False
    return bool(defined[0])


def _host_cidr(addr) -> str:
    return f"{addr}/{addr.max_prefixlen}"


def _info(status: str, server: str = "", **kw) -> dict:
    info = {"asn": None, "asn_cidr": None, "asn_description": None, "asn_country": None,
            "asn_registry": None, "asn_status": None, "network_cidr": None, "network_name": None,
            "network_handle": None, "country": None, "server": server, "status": status}
    info.update(kw)
    return info


def _make_net(addr: str):
    """ipwhois Net object (used offline only: address checks, the Cymru zone name, the parsers; Cymru is
    asked through DNS_SERVER by asn_lookup and RDAP through scout.whois.http)."""
    from ipwhois.net import Net
    try:
        return Net(addr)
    except dns.resolver.NoResolverConfiguration:
        # Net() builds a system resolver this module never uses; a machine without a resolver
        # configuration (no /etc/resolv.conf) gets the same object without it.
        return _offline_net(Net, addr)


def _offline_net(net_class, addr: str):
    """A Net with what the parsers and asn_lookup read of it (address, version, Cymru zone), built without
    Net.__init__'s system resolver. The zone as ipwhois writes it: reversed octets under
    origin.asn.cymru.com, or reversed nibbles (trailing zero groups dropped) under origin6."""
    from ipwhois.net import IPV4_DNS_ZONE, IPV6_DNS_ZONE
    net = net_class.__new__(net_class)
    net.address = ipaddress.ip_address(addr)
    net.address_str, net.version, net.timeout = str(net.address), net.address.version, 5
    net.dns_resolver, net.opener = dns.resolver.Resolver(configure=False), None
    if net.version == 4:
        net.reversed = ".".join(reversed(net.address_str.split(".")))
        net.dns_zone = IPV4_DNS_ZONE.format(net.reversed)
    else:
        groups = net.address.exploded.split(":")
        while groups and groups[-1] == "0000":
            groups.pop()
        net.reversed = ".".join("".join(groups)[::-1])
        net.dns_zone = IPV6_DNS_ZONE.format(net.reversed)
    return net


def _txt(res, source, qname: str) -> list[str]:
    ans = res.resolve(qname, "TXT", source=source, search=False)
    return [b"".join(r.strings).decode("utf-8", errors="replace") for r in ans]


def asn_lookup(net, settings, source_ip: str | None = None) -> dict:
    """ASN fields the way ipwhois gets them by DNS: origin(6).asn.cymru.com TXT for the address, then
    AS<n>.asn.cymru.com TXT for the description; parsed by ipwhois's IPASN parsers."""
    from ipwhois.asn import IPASN
    from ipwhois.exceptions import ASNParseError, ASNRegistryError

    out = {"asn": None, "asn_cidr": None, "asn_description": None, "asn_country": None,
           "asn_registry": None, "asn_status": None}
    res, source = dns_resolver(settings, source_ip)
    parser = IPASN(net)
    try:
        records = _txt(res, source, net.dns_zone)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        out["asn_status"] = "not_found"
        return out
    except dns.exception.Timeout:
        out["asn_status"] = "error: dns timeout"
        return out
    except (dns.exception.DNSException, OSError, ValueError) as e:
        out["asn_status"] = f"error: dns {type(e).__name__}"
        return out
    best = None
    for rec in records[:16]:
        try:
            parsed = parser.parse_fields_dns(rec)
            prefix = ipaddress.ip_network(parsed["asn_cidr"], strict=False)
        except (ASNParseError, ASNRegistryError, ValueError, KeyError, TypeError):
            continue
        if net.address not in prefix:
            continue   # an answer about another prefix is no answer about this address
        if best is None or prefix.prefixlen > best[0]:
            best = (prefix.prefixlen, parsed)
    if best is None:
        out["asn_status"] = "error: unreadable asn answer"
        return out
    data = best[1]
    asn = str(data.get("asn") or "").split()[0] if data.get("asn") else None
    out.update(asn=asn, asn_cidr=data.get("asn_cidr"), asn_country=data.get("asn_country_code") or None,
               asn_registry=data.get("asn_registry"), asn_status="ok")
    if asn and asn.isdigit():
        try:
            verbose = _txt(res, source, f"AS{asn}.asn.cymru.com.")
            if verbose:
                out["asn_description"] = parser.parse_fields_verbose_dns(verbose[0]).get("asn_description")
        except (dns.exception.DNSException, OSError, ASNParseError, ASNRegistryError, ValueError):
            pass  # the description is optional
    return out


def answer_cover(addr, network: str | None, asn_cidr: str | None) -> str:
    """The network an answer for `addr` may be cached under: the narrower of the RDAP network and the
    BGP prefix (Team Cymru's asn_cidr), both containing `addr`. The ASN fields are true only inside the
    prefix they came from, so without a prefix the answer is the address's alone; an RDAP network wider
    than /8 (v4) or /12 (v6) is not trusted as a cache key either (a hostile answer could claim /0)."""
    nets = []
    for cidr in (network, asn_cidr):
        try:
            nets.append(ipaddress.ip_network(cidr, strict=False) if cidr else None)
        except ValueError:
            nets.append(None)
    rdap_net, prefix = nets
    if (prefix is None or rdap_net is None or addr not in prefix or addr not in rdap_net
            or rdap_net.prefixlen < _MIN_COVER_PREFIX[addr.version]):
        return _host_cidr(addr)
    return str(max(rdap_net, prefix, key=lambda n: n.prefixlen))  # nested (both hold addr): the narrower


def lookup_ip(ip: str, settings, source_ip: str | None = None) -> dict:
    """RDAP + ASN for one address (see the module docstring for the result)."""
    try:
        addr = _addr(ip)
    except ValueError:
        return {"raw": "", "info": _info("error: invalid address"), "cover": ""}
    cover = _host_cidr(addr)
    if is_reserved(str(addr)):
        return {"raw": f"{addr}: reserved address, not looked up", "info": _info("reserved"),
                "cover": cover}
    try:
        net = _make_net(str(addr))
    except Exception as e:  # noqa: BLE001 - IPDefinedError for ranges ipwhois knows better
        return {"raw": f"{addr}: {e}", "info": _info("reserved"), "cover": cover}
    base = get_bootstrap(settings).ip_base(str(addr))
    if not base:
        asn = asn_lookup(net, settings, source_ip)
        return {"raw": f"{addr}: no RDAP service in the bootstrap registry",
                "info": _info("error: no rdap service for address", **asn), "cover": cover}
    url = f"{base}ip/{addr}"
    guard = Guard(settings, source_ip, registry=base)
    try:
        obj, text, final_url = fetch_rdap(url, guard=guard, timeout=float(settings.whois_timeout),
                                          max_bytes=int(settings.whois_max_bytes))
    except RdapNotFound as nf:
        asn = asn_lookup(net, settings, source_ip)
        return {"raw": str(nf.args[0]) if nf.args else "", "info": _info("not_found", base, **asn),
                "cover": cover, "refused": guard.refused}
    except LookupFailed as e:
        asn = asn_lookup(net, settings, source_ip)
        return {"raw": "", "info": _info(f"error: {e.reason}", base, **asn), "cover": cover,
                "refused": guard.refused}
    asn = asn_lookup(net, settings, source_ip)
    network = {}
    status = "ok"
    try:
        from ipwhois.rdap import RDAP
        parsed = RDAP(net).lookup(response=obj, bootstrap=True, root_ent_check=False, inc_raw=False,
                                  retry_count=0, asn_data=None)
        network = parsed.get("network") or {}
    except Exception as e:  # noqa: BLE001 - ipwhois raises assorted errors on malformed objects
        log.debug("ipwhois could not read the RDAP network object for %s: %s", addr, e)
        status = "error: invalid rdap network object"
    found = network_cover(obj, str(addr))
    cover = answer_cover(addr, found, asn.get("asn_cidr"))
    country = network.get("country") or asn.get("asn_country")
    info = _info(status, base, network_cidr=network.get("cidr") or found,
                 network_name=network.get("name"), network_handle=network.get("handle"),
                 country=country, **asn)
    return {"raw": text, "info": info, "cover": cover, "refused": guard.refused}

"""What a query asks: `Filters`, parsed from strings (CLI options, a web form, /api/ query strings).

Durations are `90s`, `15m`, `1h`, `7d`; times are ISO 8601 (a time without a zone is UTC) or a duration
back from now. Every filter is optional; they combine with AND.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone

DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the filter."""


def parse_duration(name: str, text: str) -> timedelta:
    m = _DURATION.match(str(text))
    if not m:
        raise FilterError(f"{name}={text!r}: expected a duration such as 90s, 15m, 1h or 7d")
    return timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])


def parse_time(name: str, text: str, now: datetime | None = None) -> datetime:
    """An ISO time (UTC when no zone is given) or a duration back from now."""
    text = str(text).strip()
    if _DURATION.match(text):
        return (now or datetime.now(timezone.utc)) - parse_duration(name, text)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"{name}={text!r}: expected an ISO time (2026-12-01T10:00:00Z) "
                          "or a duration back from now (1h, 7d)") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def parse_network(name: str, text: str):
    """An address (a /32 or /128) or a CIDR."""
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise FilterError(f"{name}={text!r}: expected an IP address or a CIDR (192.0.2.0/24)") from None


def _int(name: str, text, minimum: int = 0) -> int:
    try:
        value = int(str(text).strip().upper().removeprefix("AS"))
    except ValueError:
        raise FilterError(f"{name}={text!r}: expected a whole number") from None
    if value < minimum:
        raise FilterError(f"{name}={text!r}: expected a whole number >= {minimum}")
    return value


@dataclass
class Filters:
    domain: str | None = None            # glob: *.example.com, paypal*
    root: str | None = None              # root_domain, exact
    ip: object | None = None             # ipaddress network: an address is a /32 (/128)
    asn: int | None = None
    ns: str | None = None                # a name server of the WHOIS/RDAP answer
    registrar: str | None = None         # case-insensitive substring
    since: datetime | None = None        # first_seen >= since
    until: datetime | None = None        # first_seen < until
    min_score: int | None = None
    registered_within: timedelta | None = None  # whois created within this long before first_seen
    whois_status: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def from_query(cls, query: dict, now: datetime | None = None) -> "Filters":
        """Strings (a web form, a query string, CLI options) -> Filters. Empty values are no filter;
        unknown keys are ignored (a form's submit button, a page number). Raises FilterError."""
        q = {k.replace("-", "_"): v for k, v in query.items()
             if v is not None and str(v).strip() != ""}
        f = cls()
        for key in ("domain", "root", "ns", "registrar", "whois_status"):
            if key in q:
                setattr(f, key, str(q[key]).strip())
        f.domain = f.domain.lower() if f.domain else f.domain
        f.root = f.root.lower().rstrip(".") if f.root else f.root
        f.ns = f.ns.lower().rstrip(".") if f.ns else f.ns
        if "ip" in q:
            f.ip = parse_network("ip", q["ip"])
        if "asn" in q:
            f.asn = _int("asn", q["asn"])
        for key in ("since", "until"):
            if key in q:
                setattr(f, key, parse_time(key, q[key], now))
        if "min_score" in q:
            f.min_score = _int("min_score", q["min_score"], minimum=-(2 ** 31))
        if "registered_within" in q:
            f.registered_within = parse_duration("registered_within", q["registered_within"])
        if "limit" in q:
            f.limit = min(_int("limit", q["limit"], minimum=1), MAX_LIMIT)
        if "offset" in q:
            f.offset = _int("offset", q["offset"])
        return f

    def to_query(self) -> dict:
        """The filters back as strings (links to the next page, /api/ URLs)."""
        out = {}
        for fl in fields(self):
            v = getattr(self, fl.name)
            if v is None or (fl.name == "limit" and v == DEFAULT_LIMIT) or (fl.name == "offset" and not v):
                continue
            if isinstance(v, datetime):
                v = v.isoformat().replace("+00:00", "Z")
            elif isinstance(v, timedelta):
                v = f"{int(v.total_seconds())}s"
            out[fl.name] = str(v)
        return out

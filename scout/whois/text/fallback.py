"""python-whois's parser, for the answers our own reading finds nothing in.

On the corpus (bench/whois_accuracy.py) python-whois agrees on 79 % of fields against our 98 %, and runs
~80x slower: some of its TLD classes use regexes that are quadratic in the answer's length (`[\\w\\W]+X`
in its .hk class takes over a second on a 30 KB answer). So it runs only when our reading found no
registration data and no "no match" / "slow down" wording, on answers of at most MAX_BYTES: a layout
our tables do not know yet still gets its fields, and hostile text cannot pin a worker.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from .dates import iso, parse_date

log = logging.getLogger(__name__)

MAX_CHARS = 64 * 1024


def _first(value):
    if isinstance(value, (list, tuple)):
        return next((v for v in value if v), None)
    return value


def to_iso(value) -> str | None:
    """A third-party parser's date (datetime, string or a list of them) -> ISO 8601."""
    value = _first(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return iso(parse_date(str(value)))


def fields_from(registrar, created, updated, expires, nameservers) -> dict:
    """scout's fields from a third-party parser's values (strings, datetimes, lists of either)."""
    hosts: list[str] = []
    for v in [nameservers] if isinstance(nameservers, str) else nameservers or []:
        host = str(v).strip().split()[0].lower().rstrip(".") if str(v).strip() else ""
        if host and host not in hosts:
            hosts.append(host)
    reg = _first(registrar)
    return {"registrar": str(reg).strip()[:256] if reg else None, "created": to_iso(created),
            "updated": to_iso(updated), "expires": to_iso(expires), "nameservers": hosts[:64]}


def python_whois_fields(name: str, text: str) -> tuple[dict | None, bool]:
    """(fields or None, not_found) from python-whois's parser; (None, False) when it fails or is skipped."""
    if len(text) > MAX_CHARS:
        return None, False
    try:
        from whois.exceptions import WhoisDomainNotFoundError
        from whois.parser import WhoisEntry
    except ImportError:
        return None, False
    try:
        entry = WhoisEntry.load(name, text)
    except WhoisDomainNotFoundError:
        return None, True
    except Exception as e:  # noqa: BLE001 - third-party code fed hostile text
        log.debug("python-whois parser failed on %s (%s)", name, type(e).__name__)
        return None, False
    return fields_from(entry.get("registrar"), entry.get("creation_date"), entry.get("updated_date"),
                       entry.get("expiration_date"), entry.get("name_servers")), False

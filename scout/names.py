"""Domain names: normalising what certificates carry, and finding the registrable (root) domain.

Pure functions. `normalise_domain` returns (name, None) for a usable hostname or (None, reason) with a
short reason string that the producer counts, so nothing is dropped silently.
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_ASCII_OK = re.compile(r"^[a-z0-9_.-]+$")
MAX_NAME = 253
MAX_LABEL = 63

# Reasons, also the counter names (prefix "skipped_").
EMPTY, IP_ADDRESS, TOO_LONG, LABEL_TOO_LONG, BAD_CHARS, BAD_IDNA, NOT_A_STRING, SINGLE_LABEL = (
    "empty", "ip_address", "too_long", "label_too_long", "bad_chars", "bad_idna", "not_a_string",
    "single_label")

_psl = PublicSuffixList()  # bundled list: never touches the network


def _to_ascii(name: str) -> str | None:
    """Unicode labels -> punycode (IDNA 2003 via the stdlib codec, per label so one bad label is clear)."""
    out = []
    for label in name.split("."):
        if label.isascii():
            out.append(label)
            continue
        try:
            out.append(label.encode("idna").decode("ascii"))
        except UnicodeError:
            return None
    return ".".join(out)


def normalise_domain(raw: object, strip_www: bool = True) -> tuple[str | None, str | None]:
    """'*.WWW.Example.COM.' -> ('example.com', None); '10.0.0.1' -> (None, 'ip_address')."""
    if not isinstance(raw, str):
        return None, NOT_A_STRING
    if len(raw) > 4 * MAX_NAME:  # a 10 MB "name" is not worth lower-casing
        return None, TOO_LONG
    name = raw.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if name.startswith("*."):
        name = name[2:]
    if not name:
        return None, EMPTY
    if not name.isascii():
        name = _to_ascii(name)
        if name is None:
            return None, BAD_IDNA
        name = name.lower()
    if not _ASCII_OK.match(name):
        return None, BAD_CHARS
    if strip_www and name.startswith("www.") and name.count(".") >= 2:
        name = name[4:]
    if len(name) > MAX_NAME:
        return None, TOO_LONG
    if name.replace(".", "").isdigit():  # only digits and dots can parse as an IPv4 address here
        try:
            ipaddress.ip_address(name)
            return None, IP_ADDRESS
        except ValueError:
            pass
    labels = name.split(".")
    if len(labels) < 2:
        return None, SINGLE_LABEL  # "localhost", "intranet": not in public DNS
    for label in labels:
        if len(label) > MAX_LABEL:
            return None, LABEL_TOO_LONG
        if not _LABEL.match(label):
            return None, BAD_CHARS
    if len(labels) == 4 and all(label.isdigit() for label in labels):
        return None, IP_ADDRESS  # "010.1.1.1" and friends
    return name, None


@lru_cache(maxsize=16384)   # bounded: full before 100k names, so the producer's memory is flat
def root_domain(name: str) -> str:
    """Registrable domain by the Public Suffix List (offline); a bare suffix is its own root."""
    return _psl.privatesuffix(name) or name

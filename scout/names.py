"""Domain names: normalising what certificates carry, and the two "registrable" domains of a name.

Pure functions. `normalise_domain` returns (name, None) for a usable hostname or (None, reason) with a
short reason string that the producer counts, so nothing is dropped silently. Unicode names are encoded
the way browsers and CAs do (IDNA2008 with UTS #46 mapping, non-transitional: `straße.de` is
`xn--strae-oqa.de`; the stdlib's IDNA2003 codec would make it `strasse.de`, another domain).

Two Public Suffix List views, both from the bundled list (no network):
- `root_domain`: the whole list, private section included (`a1.github.io` -> `a1.github.io`): the seed's
  grouping of documents (OUTPUT_DIR/<root_domain>/) and what the watchlist scores as the owner's name;
- `registered_domain`: the ICANN section only (`a1.github.io` -> `github.io`): what a registry has
  registered, so what WHOIS/RDAP can answer for.
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import idna
from publicsuffixlist import PublicSuffixList

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_ASCII_OK = re.compile(r"^[a-z0-9_.-]+$")
MAX_NAME = 253
MAX_LABEL = 63

# Reasons, also the counter names (prefix "skipped_").
EMPTY, IP_ADDRESS, TOO_LONG, LABEL_TOO_LONG, BAD_CHARS, BAD_IDNA, NOT_A_STRING, SINGLE_LABEL = (
    "empty", "ip_address", "too_long", "label_too_long", "bad_chars", "bad_idna", "not_a_string",
    "single_label")

_psl = PublicSuffixList()                       # bundled list: never touches the network
_psl_icann = PublicSuffixList(only_icann=True)  # the registries' view (no github.io, herokuapp.com, ...)


def to_ascii(name: str) -> str | None:
    """A Unicode name -> its A-label form by IDNA2008 / UTS #46 non-transitional ('Straße.de' ->
    'xn--strae-oqa.de'), or None when a label is not valid IDNA2008 (emoji, disallowed code points,
    bad joiners). ASCII labels are left as they are (`_dmarc` and friends are not IDNA's business)."""
    try:
        # UTS #46 mapping first: case folding, width, and the ideographic full stops that separate labels.
        # Non-transitional is idna's only mode (3.x: the `transitional` argument is ignored, deprecated).
        mapped = idna.uts46_remap(name, std3_rules=False)
        return ".".join(label if label.isascii() else idna.alabel(label).decode("ascii")
                        for label in mapped.split("."))
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


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
        name = to_ascii(name)
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
    """Registrable domain by the whole Public Suffix List, private section included (offline): the
    documents' grouping. A bare suffix is its own root."""
    return _psl.privatesuffix(name) or name


@lru_cache(maxsize=16384)
def registered_domain(name: str) -> str:
    """The domain a registry registered, by the ICANN section of the Public Suffix List (offline):
    `a1.github.io` -> `github.io`, `shop.herokuapp.com` -> `herokuapp.com`, `a.b.example.co.uk` ->
    `example.co.uk`. WHOIS is asked about this name. A bare suffix is its own."""
    return _psl_icann.privatesuffix(name) or name


@lru_cache(maxsize=4096)
def is_private_suffix(suffix: str) -> bool:
    """Is `suffix` a provider's suffix from the list's private section (`github.io`), not a registry's?"""
    return bool(suffix) and "." in suffix and _psl_icann.publicsuffix(suffix) != suffix

"""The parts of a name that rules look at, and the shape checks on them.

`parse_name(domain, root_domain)` splits a normalised name into its suffix (public suffix, including the
Public Suffix List's private section: ``github.io``, ``duckdns.org``), the root label (what the registrant,
or the platform's user, chose) and the subdomain labels left of it, with punycode decoded and a homoglyph
skeleton for matching. Shape checks are plain functions of those parts.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from scout.names import is_private_suffix

from .text import decode_label, digit_letter_switches, fold

_FIVE_CONSONANTS = re.compile(r"[bcdfghjklmnpqrstvwxz]{5}")


class Name(NamedTuple):
    domain: str          # normalised: lowercase, no trailing dot, no leading "*."
    root: str            # registrable domain: root label + suffix
    suffix: str          # public suffix (may be a private-section one such as github.io)
    labels: tuple        # decoded labels left of the suffix; the last one is the root label
    text: str            # ".".join(labels)
    folded: str          # homoglyph skeleton of text

    @property
    def root_label(self) -> str:
        return self.labels[-1]

    @property
    def subdomains(self) -> tuple:
        return self.labels[:-1]


def clean(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    while d.startswith("*."):
        d = d[2:]
    return d


def parse_name(domain: str, root_domain: str) -> Name | None:
    """None for an empty name. When `root_domain` is empty or not a suffix of `domain`, the last two
    labels are taken as the root."""
    d = clean(domain)
    if not d:
        return None
    root = root_domain.strip().lower().rstrip(".") if root_domain else ""
    if not root or not (d == root or d.endswith("." + root)):
        root = ".".join(d.rsplit(".", 2)[-2:])
    suffix = root.partition(".")[2]
    name_part = d[: len(d) - len(suffix) - 1] if suffix else d
    if "xn--" in name_part:
        labels = tuple(decode_label(x) for x in name_part.split("."))
        text = ".".join(labels)
    else:
        labels = tuple(name_part.split("."))
        text = name_part
    return Name(d, root, suffix, labels, text, fold(text))


def private_suffix(suffix: str) -> bool:
    """Is `suffix` from the Public Suffix List's private section (a provider's, not a registry's)?
    (The one PSL of the process, scout.names's.)"""
    return is_private_suffix(suffix)


def suffixes(domain: str):
    """`domain` and each of its parent names, longest first."""
    s, pos = domain, 0
    while True:
        yield s
        pos = domain.find(".", pos) + 1
        if not pos:
            return
        s = domain[pos:]


# --- Shape ---------------------------------------------------------------------------------------------


def hyphen_count(name: Name) -> int:
    """Hyphens anybody typed: the `xn--` prefix of a label left undecoded is not one."""
    n = name.text.count("-")
    if n and "xn--" in name.text:
        n -= 2 * sum(1 for label in name.labels if label.startswith("xn--"))
    return n


def digit_count(label: str) -> int:
    return sum(map(str.isdigit, label))


def looks_random(label: str, min_length: int) -> bool:
    """A machine-made label: long enough and with a run of five consonants, or digits and letters
    switching back and forth (a7k3x9), or hardly any vowels."""
    if len(label) < min_length:
        return False
    core = label.replace("-", "")
    if len(core) < min_length or not core.isascii():
        return False
    if _FIVE_CONSONANTS.search(core) or digit_letter_switches(core) >= 3:
        return True
    letters = sum(map(str.isalpha, core))
    return letters >= min_length and sum(map(core.count, "aeiou")) < 0.2 * letters


def fake_tld_token(name: Name, fake: frozenset) -> str | None:
    """A TLD-looking label left of the root, or such a hyphen-separated part of any label:
    paypal.com.evil.example, paypal-com.evil.example."""
    last = len(name.labels) - 1
    for i, label in enumerate(name.labels):
        if i < last and label in fake:
            return label
        if "-" in label:
            for tok in label.split("-"):
                if tok in fake:
                    return tok
    return None


def com_prefix(name: Name, fake: frozenset) -> str | None:
    """The root label starts with a TLD and a hyphen right after a subdomain: ``ezdrive.com-yhq3.xin``
    reads as ezdrive.com in an address bar that cuts the rest."""
    if len(name.labels) < 2:
        return None
    head, sep, _ = name.root_label.partition("-")
    return head if sep and head in fake else None

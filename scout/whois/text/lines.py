"""A WHOIS answer as a list of (key, value) entries, whatever its layout.

Registries print the same facts in a handful of layouts; this module turns each into entries:
- `Key: value`, `Key.......: value`, `Key : value` (gTLDs, RIPE-like blocks, AFNIC, KazNIC, KRNIC);
- `[Key]   value` (JPRS), `a. [Key]  value`;
- a key alone on its line with its values on the following lines, until a blank line or the next key
  (`Name servers:` then one host per line: .ch .li .uk .it .tw ...); a known header without a colon
  (`Nameservers`, `Domain servers in listed order`) works the same way;
- `Record created on 2005-10-27` (a known key phrase, then ` on ` or two spaces, then the value).

Each entry carries the number of the blank-line-separated block it came from, so that a caller can
prefer the block describing the domain over contact blocks (RIPE-like answers repeat `changed:` per
contact). Linear in the size of the text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# "Key: value" with the key up to 60 characters; dots or spaces may pad the key ("Name.......: x").
_KV = re.compile(r"^\s*(?:[a-z]\.\s*)?([^:\[\]<>=]{1,60}?)[\s.]*:(?!//)\s*(.*)$", re.IGNORECASE)
_BRACKET = re.compile(r"^\s*(?:[a-z]\.\s*)?\[([^\]]{1,60})\]\s*(.*)$", re.IGNORECASE)
_COMMENT = re.compile(r"^\s*(?:%|#|>>>|\*\*\*|;|--)")
_SPACES = re.compile(r"[\s_\-]+")
_PAD = re.compile(r"^[\s.]*\.{2,}")   # "Registrar:..........NAME" (NICTogo)
_LEAD = re.compile(r"^[\s*.>\[]+")


@dataclass(frozen=True)
class Entry:
    key: str      # normalised: lower case, single spaces, no padding dots
    value: str    # stripped; "" for a header whose values follow on the next lines
    block: int    # index of the blank-line-separated block
    line: int     # line number
    indent: int   # leading spaces of the line
    parent: str = ""   # the section header the entry sits under ("registrar" for `Registrar:` + `Name: X`)


def norm_key(key: str) -> str:
    """`Registrar  Registration-Expiration_Date..` -> `registrar registration expiration date`."""
    return _SPACES.sub(" ", _LEAD.sub("", key).strip().strip(".").lower()).strip()


def _split(line: str, phrase_keys: frozenset) -> tuple[str, str] | None:
    m = _BRACKET.match(line)
    if m:
        return m.group(1), m.group(2)
    m = _KV.match(line)
    if m and _is_key(m.group(1), m.group(2)):
        return m.group(1), m.group(2)
    return _phrase(line, phrase_keys)


_LETTER = re.compile(r"[^\W\d_]")
_TIME_SPLIT = re.compile(r"\d{2}\b")
_IPV6_SPLIT = re.compile(r"[0-9a-f]{0,4}:", re.IGNORECASE)
_HEX_GROUP = re.compile(r"(?:^|[\s(\[,])[0-9a-f]*\d[0-9a-f]*$", re.IGNORECASE)
_IPV4 = re.compile(r"\d+\.\d+\.\d+")
_PHRASE = re.compile(r"^(.{3,50}?[\w)\]])(?:\s+on\s+|\s{2,}|\t+)(\S.*)$", re.IGNORECASE)


def _is_key(key: str, rest: str) -> bool:
    """A key has letters; a colon inside a time (`... on 2024-01-15 06:59:05`) or an IPv6 address
    (`ns1.example.net 192.0.2.1 2001:db8::1`) does not end one."""
    if not _LETTER.search(key):
        return False
    if key[-1].isdigit() and _TIME_SPLIT.match(rest):
        return False
    return not (_HEX_GROUP.search(key) and _IPV6_SPLIT.match(rest) or _IPV4.search(key))


def _phrase(line: str, phrase_keys: frozenset) -> tuple[str, str] | None:
    """`Record created on 2005-10-27`, `Created   2001-01-01`: a known key phrase, no colon."""
    s = line.strip()
    m = _PHRASE.match(s)
    if m and norm_key(m.group(1)) in phrase_keys:
        return m.group(1), m.group(2)
    if norm_key(s) in phrase_keys:   # a header without a colon ("Nameservers")
        return s, ""
    return None


# Keys that open a new object in RIPE-like answers printed without blank lines between objects
# (CZ.NIC's FRED: .cz .mk .ao .tz .cr .ar; RIPE: nic-hdl/person/role)
_OBJECT_KEYS = frozenset({"contact", "nic hdl", "nic hdl br", "person", "role", "keyset"})


def parse_entries(text: str, phrase_keys: frozenset = frozenset()) -> list[Entry]:
    """Entries of an answer. Lines under a section header (a key with no value) become values of that
    header, or entries whose `parent` is it; indented lines after a key continue its value."""
    out: list[Entry] = []
    block = 0
    header = ""                 # the current section header of this block
    owner: Entry | None = None  # the last `key: value` line, which indented lines may continue
    for no, raw in enumerate(text.replace("\r", "").split("\n")):
        if not raw.strip():
            block += 1
            owner = None
            # a header keeps its section across a blank line before its first value ("Name Servers
            # Information:", blank, hosts: .hk)
            if not (header and out and out[-1].key == header and not out[-1].value):
                header = ""
            continue
        if _COMMENT.match(raw):
            continue
        indent = len(raw) - len(raw.lstrip())
        kv = _split(raw, phrase_keys)
        if kv is None:
            if owner is not None and indent > owner.indent and owner.block == block:
                out.append(Entry(owner.key, raw.strip(), block, no, indent, owner.parent))
            elif header:                       # a value line of the section
                out.append(Entry(header, raw.strip(), block, no, indent, header))
            continue
        key, value = norm_key(kv[0]), _PAD.sub("", kv[1]).strip()
        if key in _OBJECT_KEYS and value and indent == 0 and out and out[-1].block == block:
            block += 1
            header = ""
        if not value:
            header = key
            owner = None
            out.append(Entry(key, "", block, no, indent, ""))
        else:
            owner = Entry(key, value, block, no, indent, header)
            out.append(owner)
    return out

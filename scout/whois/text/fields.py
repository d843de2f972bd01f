"""Registration fields from the entries of an answer (scout.whois.text.lines), by key synonyms.

Every registry names the same five facts differently; the tables below list the names seen in real
answers (gTLD "Registry Expiry Date" / "Registrar Registration Expiration Date", RIPE-like `created:` /
`changed:` / `nserver:`, AFNIC, JPRS `[Created on]`, KRNIC, CNNIC, .ua, .ru `paid-till`, ...), in
order of preference within a field. Keys are compared after lines.norm_key (lower case, single spaces,
`-`/`_` as spaces, padding dots gone).

Where an answer has several blocks (RIPE-like and AFNIC answers repeat `created:`/`changed:` in every
contact), the block that names the domain is read first.
"""
from __future__ import annotations

import functools
import re
from datetime import timezone

import idna

from .dates import iso, parse_date
from .lines import Entry

REGISTRAR_KEYS = (
    "registrar", "registrar name", "sponsoring registrar", "sponsoring registrar organization",
    "registration service provider", "authorised registrar", "authorized registrar", "registrar organization",
    "registrar organisation", "current registar", "current registrar", "authorized agency", "registrar info",
    "registrar of record", "registrar company", "registration agent name", "registered through",
    "注册服务机构", "所属注册服务机构", "注册商", "등록대행자", "registrador", "agente registrador",
    "bureau d'enregistrement", "registrar id", "registrar handle",
)
CREATED_KEYS = (
    "creation date", "created", "created on", "created date", "create date", "registered", "registered on",
    "registered date", "registration date", "registration time", "domain created", "domain create date",
    "domain registration date", "domain registered", "record created", "record created on",
    "domain name commencement date", "commencement date", "registration", "fecha de registro",
    "fecha de creacion", "fecha de creación", "created at", "registrado em", "data de registo",
    "date of registration", "registered at", "activated", "activation date", "domain record activated",
    "first registration date", "登録年月日", "注册时间", "注册日期", "등록일", "created by registrar",
    "domain created on", "registrado", "criado", "date created", "creation", "registration datetime",
    "activation", "connected date", "registration created", "date registered", "dateregistered",
    "entry created", "creation date", "registered on", "date de création", "date de creation",
    "data de criação", "data de registro", "fecha de alta",
)
EXPIRES_KEYS = (
    "registry expiry date", "registrar registration expiration date", "expiration date", "expiry date",
    "expires", "expires on", "expire", "expire date", "expiry", "expiration", "expiration time", "paid till",
    "valid until", "validity", "renewal date", "record expires on", "record will expire on",
    "domain expiration date", "domain expires", "expires at", "exp date", "registration expiration date",
    "fecha de vencimiento", "fecha de expiracion", "fecha de expiración", "expiration date (yyyy/mm/dd)",
    "date of expiry", "expire on", "domain expiry date", "valid till", "renewal", "vencimento", "expira",
    "有効期限", "到期时间", "过期时间", "사용 종료일", "registered until", "billed until", "paid-till",
    "renewal due", "expires date", "record expires", "expired", "datebilleduntil", "date d'expiration",
    "data de expiração", "data de expiracao", "fecha de expiración",
)
UPDATED_KEYS = (
    "updated date", "last updated", "last updated on", "last update", "updated", "changed", "last modified",
    "modified", "last modified date", "modification date", "last update time", "update date", "updated on",
    "domain last updated date", "domain record last updated", "last updated date", "record last updated on",
    "record last updated", "modified date", "domain datelastmodified", "last changed", "last change",
    "fecha de ultima actualizacion", "fecha de última actualización", "alterado", "actualizado",
    "最終更新", "更新时间", "최근 정보 변경일", "updated at", "last updated at", "date of last change",
    "last update date", "domain updated", "changed at", "modified on", "record changed", "entry updated",
    "datelastmodified", "changed on", "ultima actualizacion", "última actualización", "ultima actualización",
)
NAMESERVER_KEYS = (
    "name server", "name servers", "nameserver", "nameservers", "nserver", "nservers", "dns", "dns servers",
    "domain nameservers", "domain name servers", "domain servers", "domain servers in listed order",
    "name servers information", "name server information", "host name", "hostname", "primary server",
    "secondary server", "server name", "ns", "dns server", "nameserver in listed order",
    "name servers in the listed order", "domain name servers in listed order", "name server (db)",
    "servidores de nombres", "servidor dns", "dns1", "dns2", "dns3", "dns4", "ns1", "ns2", "ns3", "ns4",
    "호스트이름", "域名服务器", "ネームサーバ", "nameservers (name and ip)", "dns name", "nameserver name",
    "name server hostname", "servers",
)
DOMAIN_KEYS = ("domain name", "domain", "domainname", "domain name ace", "domain ace", "ドメイン名", "域名",
               "도메인이름", "nombre de dominio", "domain information")
# a header of a section whose registrar name sits in a sub-key
_NAME_SUBKEYS = ("name", "organization", "organisation", "organization name", "org", "company", "registrar name")

_HOST = re.compile(r"^(?=.{3,253}$)(?:[\w-]{1,63}\.)+[^\W\d_][\w-]{1,62}\.?$")
_PLACEHOLDER = re.compile(r"^(?:n/?a|none|not? ?(?:defined|available|disclosed|applicable)|-+|\.|redacted"
                          r"(?: for privacy)?|hidden|unknown|null)$", re.IGNORECASE)

# keys that may stand without a colon ("Record created on 2005-10-27", "Nameservers" above a list)
PHRASE_KEYS = frozenset(CREATED_KEYS + EXPIRES_KEYS + UPDATED_KEYS + NAMESERVER_KEYS + REGISTRAR_KEYS)


_PREFIXES = ("domain ", "record ", "entry ", "domain name ")
_NUMBERED_NS = re.compile(r"^(?:ns|dns|name ?server|nserver|ns name|nameserver name)\s*\d{1,2}$")


def canon(key: str, rank: dict) -> str | None:
    """The table key an answer's key stands for: itself, or without a `domain `/`record ` prefix."""
    if key in rank:
        return key
    if key.startswith(("domain ", "record ", "entry ")):
        for p in _PREFIXES:
            if key.startswith(p) and key[len(p):] in rank:
                return key[len(p):]
    return None


@functools.lru_cache(maxsize=16)
def _rank(keys: tuple) -> dict:
    return {k: i for i, k in enumerate(keys)}


def _candidates(entries: list[Entry], keys: tuple, domain_blocks: list) -> list[tuple[tuple, Entry]]:
    """Entries of any of `keys`, best first: those of the blocks naming the domain (the last such block
    first: a registrar's answer printed after the registry's is the more specific), then the rest; within
    that, by the key's preference, then by line."""
    rank = _rank(keys)
    group = {b: i for i, b in enumerate(reversed(domain_blocks))}
    out = []
    for e in entries:
        c = canon(e.key, rank) if e.value else None
        if c is not None:
            out.append(((group.get(e.block, len(group)), rank[c], e.line), e))
    out.sort(key=lambda x: x[0])
    return out


def _date(entries, keys, domain_blocks, month_first: bool, latest: bool = False) -> str | None:
    """The first readable date of the best key; with `latest`, the latest of that key's dates in the
    same place (RIPE-like answers list every `changed:` of the record's history)."""
    found = None
    dates = []
    for (grp, rank, _), e in _candidates(entries, keys, domain_blocks):
        if found is not None and (grp, rank, e.parent) != found:
            if not latest or grp != found[0] or rank != found[1]:
                break
            continue
        dt = parse_date(e.value, month_first)
        if dt is not None:
            found = (grp, rank, e.parent)
            dates.append(dt)
            if not latest:
                break
    return iso(max(dates, key=_utc)) if dates else None


def _expires(entries, domain_blocks, month_first: bool) -> str | None:
    """The expiry date; .ua registries print it only as a status: `status: OK-UNTIL 20131218000000`."""
    found = _date(entries, EXPIRES_KEYS, domain_blocks, month_first)
    if found:
        return found
    for e in entries:
        if e.key == "status" and re.match(r"ok\W*until\b", e.value, re.IGNORECASE):
            return iso(parse_date(e.value, month_first))
    return None


def _created(entries, domain_blocks, month_first: bool) -> str | None:
    """The creation date; ISOC-IL (.il) prints none, only its history: `changed: ... 19990605 (Assigned)`."""
    found = _date(entries, CREATED_KEYS, domain_blocks, month_first)
    if found:
        return found
    for e in entries:
        if e.key == "changed" and re.search(r"\((?:assigned|created|registered)\)\s*$", e.value, re.IGNORECASE):
            return iso(parse_date(e.value, month_first))
    return None


def _utc(dt):
    return dt.astimezone(timezone.utc)


def _registrar(entries: list[Entry], domain_blocks: list) -> str | None:
    """A registrar key's value; else the name under a `Registrar:` section; else the section's first line."""
    named = [e for _, e in _candidates(entries, REGISTRAR_KEYS, domain_blocks) if e.parent != e.key]
    header_lines = [e for e in entries if e.key in ("registrar", "sponsoring registrar") and e.parent == e.key]
    for e in named + _section_names(entries) + header_lines:
        v = e.value.strip().strip('"').strip()
        if v and not _PLACEHOLDER.match(v) and not v.lower().startswith(("http://", "https://")):
            return _resolve_handle(entries, v)[:256]
    return None


def _section_names(entries: list[Entry]) -> list[Entry]:
    """`Registrar:` as a section header with `Name: X` (or `Organization Name: X`) under it."""
    subs = [e for e in entries if e.parent in ("registrar", "sponsoring registrar") and e.key in _NAME_SUBKEYS
            and e.value]
    return sorted(subs, key=lambda e: _NAME_SUBKEYS.index(e.key))


def _resolve_handle(entries: list[Entry], value: str) -> str:
    """A registrar given by handle (`ACTI-0024`, `ua.markmonitor`) and described in a block of its own
    that starts with `registrar: <handle>` (.sk, .ua, RIPE-like answers): that block's name."""
    if " " in value:
        return value
    starts = {}
    for e in entries:
        starts.setdefault(e.block, e)
    for e in entries:
        first = starts[e.block]
        if first.key == "registrar" and first.value == value and e.key in _NAME_SUBKEYS and e.value:
            names = [x for x in entries if x.block == e.block and x.key in _NAME_SUBKEYS and x.value]
            return min(names, key=lambda x: _NAME_SUBKEYS.index(x.key)).value
    return value


def nameserver_host(value: str) -> str | None:
    """`ns1.example.com.`, `ns1.example.com 192.0.2.1`, `ns1.example.com (192.0.2.1)` -> `ns1.example.com`."""
    token = value.strip().split()[0] if value.strip() else ""
    token = token.strip(",;").rstrip(".").lower()
    if not token or not _HOST.match(token) or re.fullmatch(r"[\d.]+", token):
        return None
    return token


@functools.lru_cache(maxsize=4096)
def _is_ns_key(key: str) -> bool:
    return canon(key, _rank(NAMESERVER_KEYS)) is not None or _NUMBERED_NS.match(key) is not None


def _hosts(entries: list[Entry], name: str) -> list[str]:
    hosts: list[str] = []
    for e in entries:
        for part in re.split(r"[,;]\s*", e.value) if "," in e.value or ";" in e.value else [e.value]:
            host = nameserver_host(part)
            if host and host not in hosts and host != name:
                hosts.append(host)
    return hosts


def _nameservers(entries: list[Entry], domain_blocks: list, name: str) -> list[str]:
    """Hosts under name-server keys: those of the last block naming the domain that lists any, else all."""
    cands = [e for e in entries if e.value and (_is_ns_key(e.key) or _is_ns_key(e.parent))]
    for block in reversed(domain_blocks):
        hosts = _hosts([e for e in cands if e.block == block], name)
        if hosts:
            return hosts[:64]
    return _hosts(cands, name)[:64]


def _spellings(name: str) -> set:
    """The domain as an answer may print it: as asked, A-label (IDNA2008) and U-label."""
    name = name.lower().rstrip(".")
    out = {name}
    if name.isascii() and "xn--" not in name:
        return out
    for conv in (functools.partial(idna.encode, uts46=True, transitional=False), idna.decode):
        try:
            v = conv(name)
            out.add((v.decode("ascii") if isinstance(v, bytes) else v).lower())
        except (idna.IDNAError, UnicodeError, ValueError):
            pass
    return out


def domain_blocks(entries: list[Entry], name: str) -> list:
    """Blocks in which the answer names the queried domain (its own record, not a contact's), in order."""
    want = _spellings(name) if name else set()
    out: list = []
    for e in entries:
        if e.key in DOMAIN_KEYS and e.value:
            v = e.value.split()[0].lower().rstrip(".")
            if v in want and e.block not in out:
                out.append(e.block)
    return out


def extract(entries: list[Entry], name: str, month_first: bool = False) -> dict:
    """{"registrar", "created", "updated", "expires", "nameservers"} from an answer's entries."""
    blocks = domain_blocks(entries, name)
    return {
        "registrar": _registrar(entries, blocks),
        "created": _created(entries, blocks, month_first),
        "updated": _date(entries, UPDATED_KEYS, blocks, month_first, latest=True),
        "expires": _expires(entries, blocks, month_first),
        "nameservers": _nameservers(entries, blocks, name.lower().rstrip(".")),
    }

"""Watchlists: the rules that score new domains, and the holder that reloads them when their file changes.

A watchlist is a YAML file (``WATCHLIST_FILE``; the bundled ``scout/data/watchlist.yaml`` when unset, which
documents the format inline). ``load_watchlist`` parses and checks it into a ``Watchlist``;
``score_domain(domain, root_domain, watchlist)`` is a pure function returning ``(score, matches)``, where
``score`` is the sum of the ``score`` of every item in ``matches``. Every match item is a plain dict with at
least ``rule`` and ``score``:

    {"rule": "watched_root", "value": "example.com", "score": 100}
    {"rule": "keyword", "value": "login", "score": 25}
    {"rule": "regex", "value": "keyword-pair", "pattern": "...", "score": 15}
    {"rule": "tld", "value": "tk", "score": 20}
    {"rule": "brand_lookalike", "brand": "paypal", "label": "pаypal-help", "token": "pаypal",
     "where": "root", "homoglyph": True, "distance": 1, "score": 70}
    {"rule": "brand_in_subdomain", "brand": "paypal", "label": "paypal", "where": "subdomain",
     "root": "evil.example", "score": 60}
    {"rule": "brand_in_label", "brand": "paypal", "label": "paypal-verify", "where": "root",
     "homoglyph": False, "score": 50}
    {"rule": "brand_other_root", "brand": "paypal", "label": "paypal", "where": "root",
     "root": "paypal.tk", "score": 30}
    {"rule": "fake_tld", "value": "com", "score": 20}
    {"rule": "many_hyphens", "value": 5, "score": 15}
    {"rule": "deep_subdomain", "value": 4, "score": 10}

``label`` in brand items is the decoded (Unicode) label, ``token`` the label or the hyphen-separated part
of it that looks like the brand; ``where`` is ``root`` (the first label of the registrable domain) or
``subdomain`` (a label left of it); ``distance`` is the edit distance (a swap counts 1) between the token
and the brand's name. Only the strongest match counts per brand. Use the score, not ``len(matches)``:
a name under ``ignore_domains`` gets ``(0, [])`` and rules may have zero or negative scores.

Examples with the bundled list (pinned in tests/test_watchlist.py):

    example.com                      0   []
    paypal-login.com                 75  brand_in_label paypal 50 + keyword login 25
    xn--pypal-4ve.com  (pаypal.com)  70  brand_lookalike paypal (Cyrillic а)
    paypal.com.evil.example          80  brand_in_subdomain paypal 60 + fake_tld com 20
    www.paypal.com                   0   (paypal's own domain)

``WatchlistHolder(path).current()`` is what the pipeline calls per domain: it returns the current
``Watchlist``, re-reading the file at most every ``check_interval`` seconds when its mtime, size or inode
changed. A file that fails to load keeps the last good watchlist and is logged once per bad version.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

DEFAULT_WATCHLIST_PATH = Path(__file__).resolve().parent / "data" / "watchlist.yaml"

_SECTIONS = ("description", "extends", "keywords", "regexes", "watched_domains", "ignore_domains", "tlds",
             "brands", "brand_rules", "structure")
_DEFAULT_BRAND_RULES = {"lookalike": 70, "in_subdomain": 60, "in_label": 50, "other_root": 30,
                        "typo_min_length": 6, "typo2_min_length": 10, "substring_min_length": 5}
_DEFAULT_STRUCTURE = {"fake_tld": {"score": 20, "labels": ["com", "net", "org", "gov", "edu", "info", "biz"]},
                      "many_hyphens": {"min": 4, "score": 15},
                      "deep_subdomain": {"min": 4, "score": 10}}
_LIST_DEFAULT_SCORE = {"keywords": 20, "tlds": 10, "watched_domains": 100}
_BRAND_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TOKEN_CACHE_MAX = 100_000
_RESULT_CACHE_MAX = 50_000


class WatchlistError(ValueError):
    """A watchlist file that cannot be used. The message names the file and the offending entry."""


# --- Homoglyph folding -----------------------------------------------------------------------------------------
# Characters that render like a Latin letter, mapped to it. Our own selection of the usual suspects from
# Cyrillic, Greek, Armenian and Latin extensions; accents are removed separately (NFKD), fullwidth forms
# are folded by NFKD too.
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "ԑ": "e", "є": "e", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "ү": "y", "х": "x",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ь": "b", "ɡ": "g", "п": "n",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Armenian
    "օ": "o", "ո": "n", "ս": "u", "հ": "h", "զ": "q", "ց": "g",
    # Latin extensions and IPA letters without a decomposition
    "ı": "i", "ȷ": "j", "ł": "l", "ŀ": "l", "ø": "o", "đ": "d", "ħ": "h", "ƅ": "b", "ɑ": "a", "ɩ": "i",
    "ɪ": "i", "ɵ": "o", "ɢ": "g", "ʏ": "y", "ß": "ss", "æ": "ae", "œ": "oe", "þ": "p",
}
_UNICODE_TABLE = str.maketrans(_HOMOGLYPHS)
# Digits that stand in for letters in ASCII look-alikes (paypa1, g00gle, micr0s0ft).
_ASCII_TABLE = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t"})
_MULTI = (("rn", "m"), ("vv", "w"))
_NEEDS_FOLD = re.compile(r"[013457]|rn|vv")


def fold(text: str) -> str:
    """The homoglyph skeleton of `text`: two strings that look alike fold to the same string.

    >>> fold("pаypa1")   # Cyrillic а, digit one
    'paypal'
    >>> fold("rnicrosoft")
    'microsoft'
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c)).lower().translate(_UNICODE_TABLE)
    elif not _NEEDS_FOLD.search(text):
        return text
    text = text.translate(_ASCII_TABLE)
    for a, b in _MULTI:
        if a in text:
            text = text.replace(a, b)
    return text


def decode_label(label: str) -> str:
    """`xn--` label -> Unicode; anything that does not decode is returned unchanged. Never raises."""
    if not label.startswith("xn--") or len(label) > 63:
        return label
    try:
        out = label[4:].encode("ascii").decode("punycode")
    except Exception:  # UnicodeError, ValueError, IndexError... a bad label is just kept as it is
        return label
    return out.lower() if out else label


def osa_distance(a: str, b: str, limit: int | None = None) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours.
    With `limit`, any answer above it may be returned as limit + 1 (stops early)."""
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if not la or not lb:
        return la or lb
    if limit is not None and abs(la - lb) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        ca = a[i - 1]
        for j in range(1, lb + 1):
            cost = 0 if ca == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
        if limit is not None and min(cur) > limit and min(prev) > limit:  # swaps reach back two rows
            return limit + 1
        prev2, prev = prev, cur
    return prev[lb]


def _deletions1(s: str) -> list[str]:
    """`s` and every string made from it by deleting one character."""
    return [s] + [s[:i] + s[i + 1:] for i in range(len(s))]


# --- The parsed watchlist ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Brand:
    name: str
    skeleton: str
    domains: frozenset          # legitimate domains (names under them never match this brand)
    any_suffix_labels: frozenset  # from "label.*": that label under any suffix is legitimate
    substring: bool             # may be found inside a longer label
    max_distance: int           # typo distance allowed (0: homoglyphs only)


class Watchlist:
    """Parsed, checked rules plus the indexes that make scoring fast. Treat as immutable."""

    def __init__(self, *, source: str, keywords: dict[str, int], regexes: list[tuple[str, str, int]],
                 watched_domains: dict[str, int], ignore_domains: list[str], tlds: dict[str, int],
                 brands: list[Brand], brand_rules: dict[str, int], structure: dict[str, dict]):
        self.source = source
        self.keywords = tuple((k, fold(k), s) for k, s in keywords.items())
        self.regexes = tuple((name, pat, re.compile(pat), s) for name, pat, s in regexes)
        self.watched_domains = dict(watched_domains)
        self.ignore_domains = frozenset(ignore_domains)
        self.tlds = dict(tlds)
        self.brands = tuple(brands)
        self.brand_rules = dict(brand_rules)
        self.structure = {k: dict(v) for k, v in structure.items()}
        self._fake_tlds = frozenset(self.structure["fake_tld"]["labels"]) if self.structure["fake_tld"]["score"] \
            else frozenset()
        # One dict for everything looked up by a suffix of the name:
        # suffix -> (watched score | None, ignored, tld score | None, brands legitimate there).
        legit_by_domain: dict[str, set[int]] = {}
        legit_by_label: dict[str, set[int]] = {}
        for i, b in enumerate(self.brands):
            for dom in b.domains:
                legit_by_domain.setdefault(dom, set()).add(i)
            for lab in b.any_suffix_labels:
                legit_by_label.setdefault(lab, set()).add(i)
        keys = set(self.watched_domains) | self.ignore_domains | set(self.tlds) | set(legit_by_domain)
        self._suffix_info = {s: (self.watched_domains.get(s), s in self.ignore_domains, self.tlds.get(s),
                                 frozenset(legit_by_domain.get(s, ())))
                             for s in keys}
        self._legit_by_label = {k: frozenset(v) for k, v in legit_by_label.items()}
        # Brand look-up: exact/homoglyph by skeleton; typos at distance 1 by a deletion index; typos at
        # distance 2 by pigeonhole (one of three pieces of the brand survives two edits) then a bounded check.
        self._by_skeleton: dict[str, tuple[int, ...]] = {}
        typo1: dict[str, set[int]] = {}
        self._typo1_lengths: set[int] = set()
        typo2 = []
        self._typo2_lengths: set[int] = set()
        for i, b in enumerate(self.brands):
            self._by_skeleton[b.skeleton] = self._by_skeleton.get(b.skeleton, ()) + (i,)
            n = len(b.skeleton)
            if b.max_distance == 1:
                for v in _deletions1(b.skeleton):
                    typo1.setdefault(v, set()).add(i)
                self._typo1_lengths.update((n - 1, n, n + 1))
            elif b.max_distance >= 2:
                cut1, cut2 = n // 3, 2 * n // 3
                pieces = (b.skeleton[:cut1], b.skeleton[cut1:cut2], b.skeleton[cut2:])
                typo2.append((i, b.skeleton, n, pieces))
                self._typo2_lengths.update(range(n - 2, n + 3))
        self._typo1 = {k: tuple(v) for k, v in typo1.items()}
        self._typo2 = tuple(typo2)
        self._substring = tuple((i, b.skeleton, b.name) for i, b in enumerate(self.brands)
                                if b.substring and len(b.skeleton) >= brand_rules["substring_min_length"])
        # Keywords and brands-inside-labels are found through the first three letters of each: the name's
        # trigrams are intersected (in C) with these, and only the few candidates are checked.
        tri: dict[str, list] = {}
        self._short_needles: list = []
        for n, (kw, kwf, sc) in enumerate(self.keywords):
            for needle in {kw, kwf}:
                if len(needle) >= 3:
                    tri.setdefault(needle[:3], []).append((0, n, needle))
                else:
                    self._short_needles.append((0, n, needle))
        for n, (i, bsk, bname) in enumerate(self._substring):
            tri.setdefault(bsk[:3], []).append((1, n, bsk))
        self._trigram_index = {k: tuple(v) for k, v in tri.items()}
        self._trigrams = frozenset(tri)
        self._token_cache: dict[str, tuple] = {}
        self._result_cache: dict[tuple, tuple] = {}

    def needles_in(self, text: str, folded: str) -> tuple[list[int], list[int]]:
        """(indexes of keywords, indexes into _substring of brands) found in `text` or its skeleton."""
        kws: list[int] = []
        subs: list[int] = []
        trigrams, index = self._trigrams, self._trigram_index
        for s in (text, folded) if folded != text else (text,):
            grams = trigrams.intersection([s[i:i + 3] for i in range(len(s) - 2)])
            for g in grams:
                for kind, n, needle in index[g]:
                    if needle in s:
                        (kws if kind == 0 else subs).append(n)
            for kind, n, needle in self._short_needles:
                if needle in s:
                    kws.append(n)
        if not kws and not subs:
            return kws, subs
        # Brands are looked for in the skeleton only.
        if subs and folded != text:
            subs = [n for n in subs if self._substring[n][1] in folded]
        return sorted(set(kws)), sorted(set(subs))

    def describe(self) -> str:
        return (f"{self.source}: {len(self.keywords)} keywords, {len(self.regexes)} regexes, "
                f"{len(self.watched_domains)} watched domains, {len(self.ignore_domains)} ignored, "
                f"{len(self.tlds)} TLDs, {len(self.brands)} brands")

    def token_hits(self, token: str) -> tuple:
        """Brands a label (or hyphen-separated part of one) is, or looks like:
        ((brand index, "exact" | "homoglyph" | "typo", distance to the brand's name), ...). Memoised."""
        hit = self._token_cache.get(token)
        if hit is not None:
            return hit
        sk = fold(token)
        found: dict[int, tuple] = {}
        for i in self._by_skeleton.get(sk, ()):
            name = self.brands[i].name
            found[i] = ("exact", 0) if token == name else ("homoglyph", osa_distance(token, name))
        n = len(sk)
        if n in self._typo1_lengths:
            idx = self._typo1
            for v in _deletions1(sk):
                for i in idx.get(v, ()):
                    if i not in found and osa_distance(sk, self.brands[i].skeleton, 1) <= 1:
                        found[i] = ("typo", osa_distance(token, self.brands[i].name))
        if n in self._typo2_lengths:
            for i, bsk, bn, (p1, p2, p3) in self._typo2:
                if i in found or abs(bn - n) > 2 or not (p1 in sk or p2 in sk or p3 in sk):
                    continue
                if osa_distance(sk, bsk, 2) <= 2:
                    found[i] = ("typo", osa_distance(token, self.brands[i].name))
        hit = tuple((i, kind, dist) for i, (kind, dist) in found.items())
        if len(self._token_cache) >= _TOKEN_CACHE_MAX:
            self._token_cache.clear()
        self._token_cache[token] = hit
        return hit


# --- Loading ------------------------------------------------------------------------------------------------


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WatchlistError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise WatchlistError(f"{path}: cannot read: {e}") from None
    if not text.strip():
        raise WatchlistError(f"{path}: file is empty (write {{}} for a watchlist with no rules)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        raise WatchlistError(f"{path}: not valid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise WatchlistError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def _int(where: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise WatchlistError(f"{where}: expected a whole number, got {v!r}")
    return v


def _text(where: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise WatchlistError(f"{where}: expected a non-empty string, got {v!r}")
    return v.strip()


def _domain(where: str, v: Any) -> str:
    d = _text(where, v).lower().rstrip(".")
    if d.startswith("*."):
        d = d[2:]
    if not d.isascii():
        try:
            d = ".".join(lab.encode("idna").decode("ascii") if not lab.isascii() else lab for lab in d.split("."))
        except UnicodeError as e:
            raise WatchlistError(f"{where}: {v!r} is not a valid domain name: {e}") from None
    if not d or " " in d or ".." in d or d.startswith("."):
        raise WatchlistError(f"{where}: {v!r} is not a valid domain name")
    return d


def _scored(path: Path, section: str, v: Any, key=_text) -> dict[str, int]:
    """`{name: score}` or a list of names (each getting the section's default score)."""
    where = f"{path}: {section}"
    if v is None:
        return {}
    if isinstance(v, list):
        return {key(f"{where}[{i}]", x): _LIST_DEFAULT_SCORE[section] for i, x in enumerate(v)}
    if isinstance(v, dict):
        return {key(f"{where}.{k}", str(k) if isinstance(k, (int, float)) else k): _int(f"{where}.{k}", s)
                for k, s in v.items()}
    raise WatchlistError(f"{where}: expected a mapping of name: score (or a list of names), "
                         f"got {type(v).__name__}")


def _keyword(where: str, v: Any) -> str:
    return _text(where, v).lower()


def _tld(where: str, v: Any) -> str:
    return _domain(where, _text(where, v).lstrip("."))


def _brand(path: Path, name: Any, spec: Any, rules: dict[str, int]) -> Brand:
    where = f"{path}: brands.{name}"
    if not isinstance(name, str) or not _BRAND_NAME.match(name.strip().lower()):
        raise WatchlistError(f"{where}: a brand name is letters, digits and hyphens, got {name!r}")
    name = name.strip().lower()
    substring, typos, domains = True, True, None
    if isinstance(spec, dict):
        unknown = set(spec) - {"domains", "substring", "typos"}
        if unknown:
            raise WatchlistError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; "
                                 f"expected domains, substring, typos")
        domains = spec.get("domains")
        for flag in ("substring", "typos"):
            if flag in spec and not isinstance(spec[flag], bool):
                raise WatchlistError(f"{where}.{flag}: expected true or false, got {spec[flag]!r}")
        substring = spec.get("substring", True)
        typos = spec.get("typos", True)
    elif spec is None or isinstance(spec, list):
        domains = spec
    else:
        raise WatchlistError(f"{where}: expected a list of legitimate domains or a mapping with domains, "
                             f"substring, typos; got {spec!r}")
    if domains is None:
        domains = [f"{name}.com"]
    if not isinstance(domains, list):
        raise WatchlistError(f"{where}.domains: expected a list of domains, got {domains!r}")
    exact, any_suffix = set(), set()
    for i, d in enumerate(domains):
        text = _text(f"{where}.domains[{i}]", d).lower()
        if text.endswith(".*"):
            any_suffix.add(_domain(f"{where}.domains[{i}]", text[:-2]))
        else:
            exact.add(_domain(f"{where}.domains[{i}]", text))
    sk = fold(name)
    k = 0
    if typos and len(sk) >= rules["typo_min_length"]:
        k = 2 if len(sk) >= rules["typo2_min_length"] else 1
    return Brand(name=name, skeleton=sk, domains=frozenset(exact), any_suffix_labels=frozenset(any_suffix),
                 substring=substring, max_distance=k)


def _parse(path: Path, data: dict) -> Watchlist:
    unknown = [k for k in data if k not in _SECTIONS]
    if unknown:
        raise WatchlistError(f"{path}: unknown section(s) {unknown}; expected some of {', '.join(_SECTIONS[1:])}")
    keywords = _scored(path, "keywords", data.get("keywords"), _keyword)
    tlds = _scored(path, "tlds", data.get("tlds"), _tld)
    watched = _scored(path, "watched_domains", data.get("watched_domains"), _domain)

    ignore_raw = data.get("ignore_domains") or []
    if not isinstance(ignore_raw, list):
        raise WatchlistError(f"{path}: ignore_domains: expected a list of domains, got {ignore_raw!r}")
    ignore = [_domain(f"{path}: ignore_domains[{i}]", d) for i, d in enumerate(ignore_raw)]

    regexes = []
    raw = data.get("regexes") or []
    if not isinstance(raw, list):
        raise WatchlistError(f"{path}: regexes: expected a list of {{pattern, score, name}}, got {raw!r}")
    for i, r in enumerate(raw):
        where = f"{path}: regexes[{i}]"
        if not isinstance(r, dict) or "pattern" not in r or "score" not in r:
            raise WatchlistError(f"{where}: expected a mapping with pattern and score (and optional name), got {r!r}")
        extra = set(r) - {"pattern", "score", "name"}
        if extra:
            raise WatchlistError(f"{where}: unknown key(s) {sorted(map(str, extra))}")
        pat = r["pattern"]
        if not isinstance(pat, str) or not pat:
            raise WatchlistError(f"{where}.pattern: expected a non-empty string, got {pat!r}")
        try:
            re.compile(pat)
        except re.error as e:
            raise WatchlistError(f"{where}.pattern: bad regular expression {pat!r}: {e}") from None
        name = _text(f"{where}.name", r["name"]) if r.get("name") is not None else pat
        regexes.append((name, pat, _int(f"{where}.score", r["score"])))

    rules = dict(_DEFAULT_BRAND_RULES)
    br = data.get("brand_rules") or {}
    if not isinstance(br, dict):
        raise WatchlistError(f"{path}: brand_rules: expected a mapping, got {br!r}")
    for k, v in br.items():
        if k not in rules:
            raise WatchlistError(f"{path}: brand_rules.{k}: unknown; expected one of {', '.join(rules)}")
        rules[k] = _int(f"{path}: brand_rules.{k}", v)

    brands_raw = data.get("brands") or {}
    if not isinstance(brands_raw, dict):
        raise WatchlistError(f"{path}: brands: expected a mapping of brand: [legitimate domains], got {brands_raw!r}")
    brands = [_brand(path, n, spec, rules) for n, spec in brands_raw.items()]

    structure = {k: dict(v) for k, v in _DEFAULT_STRUCTURE.items()}
    st = data.get("structure") or {}
    if not isinstance(st, dict):
        raise WatchlistError(f"{path}: structure: expected a mapping, got {st!r}")
    for k, v in st.items():
        if k not in structure:
            raise WatchlistError(f"{path}: structure.{k}: unknown; expected one of {', '.join(structure)}")
        if not isinstance(v, dict):
            raise WatchlistError(f"{path}: structure.{k}: expected a mapping, got {v!r}")
        for kk, vv in v.items():
            if kk not in structure[k]:
                raise WatchlistError(f"{path}: structure.{k}.{kk}: unknown; expected one of "
                                     f"{', '.join(structure[k])}")
            if kk == "labels":
                if not isinstance(vv, list):
                    raise WatchlistError(f"{path}: structure.{k}.labels: expected a list, got {vv!r}")
                vv = [_text(f"{path}: structure.{k}.labels[{i}]", x).lower() for i, x in enumerate(vv)]
            else:
                vv = _int(f"{path}: structure.{k}.{kk}", vv)
            structure[k][kk] = vv
    return Watchlist(source=str(path), keywords=keywords, regexes=regexes, watched_domains=watched,
                     ignore_domains=ignore, tlds=tlds, brands=brands, brand_rules=rules, structure=structure)


def _merge(base: dict, over: dict) -> dict:
    """`extends: default`: mappings are merged (the file wins), lists are concatenated."""
    out = dict(base)
    for k, v in over.items():
        if k == "extends":
            continue
        b = base.get(k)
        if isinstance(b, dict) and isinstance(v, dict):
            if k == "structure":
                out[k] = {kk: ({**b.get(kk, {}), **vv} if isinstance(vv, dict) else vv) for kk, vv in
                          {**b, **v}.items()}
            else:
                out[k] = {**b, **v}
        elif isinstance(b, list) and isinstance(v, list):
            out[k] = b + v
        else:
            out[k] = v
    return out


def load_watchlist(path: str | os.PathLike | None = None) -> Watchlist:
    """Parse and check a watchlist file; None (or "") loads the bundled default. Raises WatchlistError."""
    if not path:
        return _parse(DEFAULT_WATCHLIST_PATH, _load_yaml(DEFAULT_WATCHLIST_PATH))
    p = Path(path)
    data = _load_yaml(p)
    ext = data.get("extends")
    if ext is not None:
        if ext != "default":
            raise WatchlistError(f"{p}: extends: only 'default' (the bundled watchlist) is supported, got {ext!r}")
        data = _merge(_load_yaml(DEFAULT_WATCHLIST_PATH), data)
    return _parse(p, data)


# --- Scoring ----------------------------------------------------------------------------------------------------

_BRAND_RULE_ORDER = {"brand_lookalike": 0, "brand_in_subdomain": 1, "brand_in_label": 2, "brand_other_root": 3}


def score_domain(domain: str, root_domain: str, watchlist: Watchlist) -> tuple[int, list[dict]]:
    """Score one name against a watchlist: ``(score, matches)``, score being the sum of the matches' scores.

    Pure: the same arguments always give the same result (the watchlist memoises recent results and hands
    out fresh copies, so callers may keep or change what they get). Never raises, whatever the strings.

    `domain` is the normalised name (lowercase, punycode `xn--` labels; a leading ``*.`` is ignored);
    `root_domain` its registrable domain (one label + public suffix, e.g. ``evil.co.uk``). When
    `root_domain` is empty or not a suffix of `domain`, the last two labels are used.

    With the bundled list:
        score_domain("paypal-login.com", "paypal-login.com", wl)
        -> (75, [{"rule": "keyword", "value": "login", "score": 25},
                 {"rule": "brand_in_label", "brand": "paypal", "label": "paypal-login", "where": "root",
                  "homoglyph": False, "score": 50}])
    """
    key = (domain, root_domain)
    cache = watchlist._result_cache
    hit = cache.get(key)
    if hit is None:
        try:
            hit = _score(domain, root_domain, watchlist)
        except Exception:  # a rule bug must not take the pipeline down; log and score as nothing
            log.exception("scoring %r failed", domain)
            return 0, []
        if len(cache) >= _RESULT_CACHE_MAX:
            cache.clear()
        cache[key] = hit
    score, matches = hit
    return score, [dict(m) for m in matches] if matches else []


def _score(domain: str, root_domain: str, wl: Watchlist) -> tuple[int, list[dict]]:
    d = domain.strip().lower().rstrip(".")
    while d.startswith("*."):
        d = d[2:]
    if not d:
        return 0, []
    root = root_domain.strip().lower().rstrip(".") if root_domain else ""
    if not root or not (d == root or d.endswith("." + root)):
        root = ".".join(d.rsplit(".", 2)[-2:])
    suffix = root.partition(".")[2]
    name_part = d[: len(d) - len(suffix) - 1] if suffix else d

    # Suffix walk, longest first: watched, ignored, suspicious TLD, brands' legitimate domains.
    watched = tld = None
    ignored = False
    legit: frozenset = frozenset()
    info = wl._suffix_info
    if info:
        s, pos = d, 0
        while True:
            it = info.get(s)
            if it is not None:
                if watched is None and it[0] is not None:
                    watched = s
                if it[1]:
                    ignored = True
                if tld is None and it[2] is not None:
                    tld = s
                if it[3]:
                    legit = legit | it[3]
            pos = d.find(".", pos) + 1
            if not pos:
                break
            s = d[pos:]
    matches: list[dict] = []
    if watched is not None:
        matches.append({"rule": "watched_root", "value": watched, "score": wl.watched_domains[watched]})
    elif ignored:
        return 0, []
    if tld is not None:
        matches.append({"rule": "tld", "value": tld, "score": wl.tlds[tld]})

    # Decoded labels of the name part, and their homoglyph skeleton.
    if "xn--" in name_part:
        labels = [decode_label(x) for x in name_part.split(".")]
        text = ".".join(labels)
    else:
        labels = name_part.split(".")
        text = name_part
    folded = fold(text)

    kw_hits, sub_hits = wl.needles_in(text, folded)
    for n in kw_hits:
        kw, _kwf, sc = wl.keywords[n]
        matches.append({"rule": "keyword", "value": kw, "score": sc})

    if wl.regexes:
        full = d if text is name_part else (text + "." + suffix if suffix else text)
        for name, pat, rx, sc in wl.regexes:
            if rx.search(d) or (full is not d and rx.search(full)):
                matches.append({"rule": "regex", "value": name, "pattern": pat, "score": sc})

    # Brands: per brand, only the strongest match counts.
    if wl.brands:
        best: dict[int, dict] = {}
        rules = wl.brand_rules
        last = len(labels) - 1
        root_label = labels[last]
        if wl._legit_by_label:
            lg = wl._legit_by_label.get(root_label)
            if lg:
                legit = legit | lg
        cache = wl._token_cache
        for li, label in enumerate(labels):
            hits = cache.get(label)
            if hits is None:
                hits = wl.token_hits(label)
            if "-" in label:
                for tok in label.split("-"):
                    if tok and tok != label:
                        th = cache.get(tok)
                        if th is None:
                            th = wl.token_hits(tok)
                        if th:
                            hits = hits + tuple((i, kind, dist, tok) for i, kind, dist in th)
            if not hits:
                continue
            where = "root" if li == last else "subdomain"
            for h in hits:
                i, kind = h[0], h[1]
                if i in legit:
                    continue
                whole = len(h) == 3  # the whole label, not a hyphen-separated part
                b = wl.brands[i]
                if kind == "exact":
                    if where == "subdomain":
                        m = {"rule": "brand_in_subdomain", "brand": b.name, "label": label, "where": where,
                             "root": root, "score": rules["in_subdomain"]}
                    elif whole:
                        m = {"rule": "brand_other_root", "brand": b.name, "label": label, "where": where,
                             "root": root, "score": rules["other_root"]}
                    else:
                        m = {"rule": "brand_in_label", "brand": b.name, "label": label, "where": where,
                             "homoglyph": False, "score": rules["in_label"]}
                else:
                    m = {"rule": "brand_lookalike", "brand": b.name, "label": label,
                         "token": label if whole else h[3], "where": where, "homoglyph": kind == "homoglyph",
                         "distance": h[2], "score": rules["lookalike"]}
                _offer(best, i, m)
        for n in sub_hits:
            i, bsk, bname = wl._substring[n]
            if i in legit:
                continue
            for li, label in enumerate(labels):
                lf = fold(label)
                if bsk in lf and lf != bsk:
                    _offer(best, i, {"rule": "brand_in_label", "brand": bname, "label": label,
                                     "where": "root" if li == last else "subdomain",
                                     "homoglyph": bname not in label, "score": rules["in_label"]})
                    break
        if best:
            for i in sorted(best, key=lambda i: (_BRAND_RULE_ORDER[best[i]["rule"]], wl.brands[i].name)):
                matches.append(best[i])

    # Shape of the name.
    st = wl.structure
    n_sub = len(labels) - 1
    fake = wl._fake_tlds
    if fake:
        hit = None
        for li, label in enumerate(labels):
            if li < n_sub and label in fake:
                hit = label
            elif "-" in label:
                for tok in label.split("-"):
                    if tok in fake:
                        hit = tok
                        break
            if hit:
                matches.append({"rule": "fake_tld", "value": hit, "score": st["fake_tld"]["score"]})
                break
    hy = st["many_hyphens"]
    if hy["score"] and "-" in text:
        n = text.count("-")
        if "xn--" in text:  # labels left undecoded: their prefix is not a hyphen anybody typed
            n -= 2 * sum(1 for label in labels if label.startswith("xn--"))
        if n >= hy["min"] > 0:
            matches.append({"rule": "many_hyphens", "value": n, "score": hy["score"]})
    deep = st["deep_subdomain"]
    if deep["score"] and n_sub >= deep["min"] > 0:
        matches.append({"rule": "deep_subdomain", "value": n_sub, "score": deep["score"]})

    return sum(m["score"] for m in matches), matches


def _offer(best: dict[int, dict], i: int, m: dict) -> None:
    cur = best.get(i)
    if cur is None or (m["score"], -_BRAND_RULE_ORDER[m["rule"]]) > (cur["score"], -_BRAND_RULE_ORDER[cur["rule"]]):
        best[i] = m


# --- Hot reloading ----------------------------------------------------------------------------------------------


class WatchlistHolder:
    """The current watchlist of a file, re-read when the file changes; cheap to call per domain.

    `current()` costs a clock read most of the time; every `check_interval` seconds one caller stats the
    file and, when its (mtime, size, inode) changed, loads it. A file that fails to load (bad YAML, bad
    regex, missing...) leaves the last good watchlist in place and is logged once per bad version.
    The first load happens in the constructor and raises WatchlistError: a bad file at startup is a
    configuration error. `path` None or "" means the bundled default, which is never re-read.
    """

    def __init__(self, path: str | os.PathLike | None, check_interval: float = 2.0):
        self.path = Path(path) if path else None
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._sig = self._stat()
        self._watchlist = load_watchlist(self.path)
        self._bad_sig: object = None
        self._next_check = time.monotonic() + check_interval
        self.version = 1            # bumped on every successful reload
        self.last_error: str | None = None

    def _stat(self):
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return "missing"
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> Watchlist:
        if self.path is None or time.monotonic() < self._next_check:
            return self._watchlist
        self.check()
        return self._watchlist

    def check(self) -> bool:
        """Stat the file now and reload it if it changed. True when a new watchlist was loaded."""
        if self.path is None or not self._lock.acquire(blocking=False):
            return False
        try:
            self._next_check = time.monotonic() + self.check_interval
            sig = self._stat()
            if sig == self._sig or sig == self._bad_sig:
                return False
            try:
                if sig == "missing":
                    raise WatchlistError(f"{self.path}: file not found")
                wl = load_watchlist(self.path)
            except WatchlistError as e:
                self._bad_sig = sig
                self.last_error = str(e)
                log.warning("watchlist not reloaded, keeping the last good one: %s", e)
                return False
            except Exception as e:  # anything unexpected: same policy
                self._bad_sig = sig
                self.last_error = f"{self.path}: {e!r}"
                log.warning("watchlist not reloaded, keeping the last good one: %s: %r", self.path, e)
                return False
            self._watchlist = wl
            self._sig = sig
            self._bad_sig = None
            self.last_error = None
            self.version += 1
            log.info("watchlist reloaded: %s", wl.describe())
            return True
        finally:
            self._lock.release()

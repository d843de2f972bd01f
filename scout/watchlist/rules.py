"""Loading a watchlist: YAML -> checked rules -> a `Watchlist` with the indexes that make scoring fast.

`load_watchlist(path)` parses and checks a file (None: the bundled default, `DEFAULT_WATCHLIST_PATH`);
every problem raises `WatchlistError` naming the file and the entry. The format is documented inline in
the bundled file. Sections added after the first release (platforms, keyword_rules, brand_affixes and the
newer `structure` checks) score nothing unless a file sets them, so older files score as they did.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from scout.names import to_ascii

from .brands import Brand, BrandIndex
from .text import NeedleIndex, fold

DEFAULT_WATCHLIST_PATH = Path(__file__).resolve().parent / "data" / "watchlist.yaml"

_SECTIONS = ("description", "extends", "keywords", "keyword_rules", "regexes", "watched_domains",
             "ignore_domains", "tlds", "brands", "brand_affixes", "brand_rules", "structure", "platforms")
_DEFAULT_BRAND_RULES = {"lookalike": 70, "in_subdomain": 60, "in_label": 50, "other_root": 30,
                        "typo_min_length": 6, "typo2_min_length": 10, "substring_min_length": 5}
_DEFAULT_KEYWORD_RULES = {"subdomain_percent": 100}
_DEFAULT_STRUCTURE = {"fake_tld": {"score": 20, "labels": ["com", "net", "org", "gov", "edu", "info", "biz"]},
                      "com_prefix": {"score": 0},
                      "many_hyphens": {"min": 4, "score": 15},
                      "deep_subdomain": {"min": 4, "score": 10},
                      "digits": {"min": 4, "score": 0},
                      "random_label": {"min_length": 8, "score": 0},
                      "long_label": {"min": 25, "score": 0},
                      "label_length": {"from": 8, "max": 20, "score": 0},
                      "root_hyphens": {"max": 4, "score": 0},
                      "random_subdomain": {"min_length": 6, "score": 0}}
_DEFAULT_PLATFORMS = {"private_suffix": 0, "hosting": 0, "infrastructure_percent": 100, "hosting_suffixes": []}
_LIST_DEFAULT_SCORE = {"keywords": 20, "tlds": 10, "watched_domains": 100}
_BRAND_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class WatchlistError(ValueError):
    """A watchlist file that cannot be used. The message names the file and the offending entry."""


class Watchlist:
    """Parsed, checked rules plus the indexes that make scoring fast. Treat as immutable."""

    def __init__(self, *, source: str, keywords: dict[str, int], regexes: list[tuple[str, str, int]],
                 watched_domains: dict[str, int], ignore_domains: list[str], tlds: dict[str, int],
                 brands: list[Brand], brand_rules: dict[str, int], structure: dict[str, dict],
                 keyword_rules: dict[str, int] | None = None, brand_affixes: list[str] = (),
                 platforms: dict | None = None):
        self.source = source
        self.keywords = tuple((k, fold(k), s) for k, s in keywords.items())
        self.keyword_rules = {**_DEFAULT_KEYWORD_RULES, **(keyword_rules or {})}
        self.regexes = tuple((name, pat, re.compile(pat), s) for name, pat, s in regexes)
        self.watched_domains = dict(watched_domains)
        self.ignore_domains = frozenset(ignore_domains)
        self.tlds = dict(tlds)
        self.brand_rules = dict(brand_rules)
        affixes = frozenset(fold(a) for a in brand_affixes) | {kwf for _k, kwf, _s in self.keywords}
        self.brands = BrandIndex(brands, affixes, brand_rules["substring_min_length"])
        self.structure = {k: dict(v) for k, v in structure.items()}
        self.fake_tlds = frozenset(self.structure["fake_tld"]["labels"])
        self.shape_rules = tuple((k, v) for k, v in self.structure.items() if v["score"])  # the ones that score
        self.platforms = {**_DEFAULT_PLATFORMS, **(platforms or {})}
        self.hosting = frozenset(self.platforms["hosting_suffixes"])
        # Everything looked up by a suffix of the name, in one dict:
        # suffix -> (watched score | None, ignored, tld score | None, a brand's own domain, hosting platform).
        own = {d for b in brands for d in b.domains}
        keys = set(self.watched_domains) | self.ignore_domains | set(self.tlds) | own | self.hosting
        self.suffix_info = {s: (self.watched_domains.get(s), s in self.ignore_domains, self.tlds.get(s),
                                s in own, s in self.hosting) for s in keys}
        self.own_labels = frozenset(lab for b in brands for lab in b.any_suffix_labels)
        # Keywords (their skeletons) and the brands allowed anywhere in a label (spelled out), found in one
        # pass over a name: indexes below len(self.keywords) are keywords, the rest brands.substring.
        self.needles = NeedleIndex([kwf for _k, kwf, _s in self.keywords]
                                   + [name for _i, name, _sk in self.brands.substring])
        self.result_cache: dict[tuple, tuple] = {}

    def describe(self) -> str:
        return (f"{self.source}: {len(self.keywords)} keywords, {len(self.regexes)} regexes, "
                f"{len(self.watched_domains)} watched domains, {len(self.ignore_domains)} ignored, "
                f"{len(self.tlds)} TLDs, {len(self.brands)} brands, {len(self.hosting)} hosting platforms")


# --- Loading -----------------------------------------------------------------------------------------------


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
        ascii_name = to_ascii(d)   # IDNA2008, as the pipeline encodes the names it scores
        if ascii_name is None:
            raise WatchlistError(f"{where}: {v!r} is not a valid domain name (IDNA2008)")
        d = ascii_name
    if not d or " " in d or ".." in d or d.startswith("."):
        raise WatchlistError(f"{where}: {v!r} is not a valid domain name")
    return d


def _list(where: str, v: Any, item) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise WatchlistError(f"{where}: expected a list, got {v!r}")
    return [item(f"{where}[{i}]", x) for i, x in enumerate(v)]


def _mapping(where: str, v: Any) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise WatchlistError(f"{where}: expected a mapping, got {v!r}")
    return v


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


def _brand_spec(where: str, name: str, spec: Any) -> tuple[bool, bool, list]:
    """(substring, typos, domains) of a brand's short (a list of domains) or long (a mapping) form."""
    if isinstance(spec, dict):
        unknown = set(spec) - {"domains", "substring", "typos"}
        if unknown:
            raise WatchlistError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; "
                                 f"expected domains, substring, typos")
        for flag in ("substring", "typos"):
            if flag in spec and not isinstance(spec[flag], bool):
                raise WatchlistError(f"{where}.{flag}: expected true or false, got {spec[flag]!r}")
        domains = spec.get("domains")
        substring, typos = spec.get("substring", True), spec.get("typos", True)
    elif spec is None or isinstance(spec, list):
        domains, substring, typos = spec, True, True
    else:
        raise WatchlistError(f"{where}: expected a list of legitimate domains or a mapping with domains, "
                             f"substring, typos; got {spec!r}")
    if domains is None:
        domains = [f"{name}.com"]
    if not isinstance(domains, list):
        raise WatchlistError(f"{where}.domains: expected a list of domains, got {domains!r}")
    return substring, typos, domains


def _brand(path: Path, name: Any, spec: Any, rules: dict[str, int]) -> Brand:
    where = f"{path}: brands.{name}"
    if not isinstance(name, str) or not _BRAND_NAME.match(name.strip().lower()):
        raise WatchlistError(f"{where}: a brand name is letters, digits and hyphens, got {name!r}")
    name = name.strip().lower()
    substring, typos, domains = _brand_spec(where, name, spec)
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


def _regexes(path: Path, raw: Any) -> list[tuple[str, str, int]]:
    if not isinstance(raw or [], list):
        raise WatchlistError(f"{path}: regexes: expected a list of {{pattern, score, name}}, got {raw!r}")
    out = []
    for i, r in enumerate(raw or []):
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
        out.append((name, pat, _int(f"{where}.score", r["score"])))
    return out


def _numbers(where: str, raw: Any, defaults: dict) -> dict:
    """A mapping of whole numbers over `defaults` (unknown keys rejected)."""
    out = dict(defaults)
    for k, v in _mapping(where, raw).items():
        if k not in out:
            raise WatchlistError(f"{where}.{k}: unknown; expected one of {', '.join(out)}")
        out[k] = _int(f"{where}.{k}", v)
    return out


def _structure(path: Path, raw: Any) -> dict[str, dict]:
    structure = {k: dict(v) for k, v in _DEFAULT_STRUCTURE.items()}
    for k, v in _mapping(f"{path}: structure", raw).items():
        where = f"{path}: structure.{k}"
        if k not in structure:
            raise WatchlistError(f"{where}: unknown; expected one of {', '.join(structure)}")
        for kk, vv in _mapping(where, v).items():
            if kk not in structure[k]:
                raise WatchlistError(f"{where}.{kk}: unknown; expected one of {', '.join(structure[k])}")
            if kk == "labels":
                vv = [x.lower() for x in _list(f"{where}.labels", vv, _text)]
            else:
                vv = _int(f"{where}.{kk}", vv)
            structure[k][kk] = vv
    return structure


def _platforms(path: Path, raw: Any) -> dict:
    where = f"{path}: platforms"
    raw = dict(_mapping(where, raw))
    suffixes = _list(f"{where}.hosting_suffixes", raw.pop("hosting_suffixes", None), _domain)
    out = _numbers(where, raw, {k: v for k, v in _DEFAULT_PLATFORMS.items() if k != "hosting_suffixes"})
    return {**out, "hosting_suffixes": suffixes}


def _parse(path: Path, data: dict) -> Watchlist:
    unknown = [k for k in data if k not in _SECTIONS]
    if unknown:
        raise WatchlistError(f"{path}: unknown section(s) {unknown}; expected some of {', '.join(_SECTIONS[1:])}")
    rules = _numbers(f"{path}: brand_rules", data.get("brand_rules"), _DEFAULT_BRAND_RULES)
    brands_raw = data.get("brands") or {}
    if not isinstance(brands_raw, dict):
        raise WatchlistError(f"{path}: brands: expected a mapping of brand: [legitimate domains], got {brands_raw!r}")
    return Watchlist(
        source=str(path),
        keywords=_scored(path, "keywords", data.get("keywords"), _keyword),
        keyword_rules=_numbers(f"{path}: keyword_rules", data.get("keyword_rules"), _DEFAULT_KEYWORD_RULES),
        regexes=_regexes(path, data.get("regexes")),
        watched_domains=_scored(path, "watched_domains", data.get("watched_domains"), _domain),
        ignore_domains=_list(f"{path}: ignore_domains", data.get("ignore_domains"), _domain),
        tlds=_scored(path, "tlds", data.get("tlds"), _tld),
        brands=[_brand(path, n, spec, rules) for n, spec in brands_raw.items()],
        brand_affixes=[x.lower() for x in _list(f"{path}: brand_affixes", data.get("brand_affixes"), _text)],
        brand_rules=rules,
        structure=_structure(path, data.get("structure")),
        platforms=_platforms(path, data.get("platforms")))


def _merge(base: dict, over: dict) -> dict:
    """`extends: default`: mappings are merged (the file wins; structure one level deeper), lists are
    concatenated."""
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
                out[k] = _merge(b, v) if k == "platforms" else {**b, **v}
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

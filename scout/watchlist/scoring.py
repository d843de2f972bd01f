"""`score_domain(domain, root_domain, watchlist) -> (score, matches)`: a pure function.

`score` is the sum of the `score` of every item in `matches`; each item is a plain dict with at least
`rule` and `score` (what fired and what it added), plus what it saw:

    {"rule": "watched_root", "value": "example.com", "score": 100}
    {"rule": "tld", "value": "tk", "score": 20}
    {"rule": "keyword", "value": "login", "where": "root", "score": 25}
    {"rule": "regex", "value": "keyword-pair", "pattern": "...", "score": 15}
    {"rule": "brand_lookalike", "brand": "paypal", "label": "pаypal-help", "token": "pаypal",
     "where": "root", "homoglyph": True, "distance": 1, "score": 70}
    {"rule": "brand_in_subdomain", "brand": "paypal", "label": "paypal", "where": "subdomain",
     "root": "evil.example", "score": 60}
    {"rule": "brand_in_label", "brand": "apple", "label": "appleid-verify", "where": "root",
     "homoglyph": False, "score": 50}
    {"rule": "brand_other_root", "brand": "paypal", "label": "paypal", "where": "root", "root": "paypal.tk",
     "score": 30}
    {"rule": "hosting_platform", "value": "000webhostapp.com", "score": 30}
    {"rule": "private_suffix", "value": "akamaiedge.net", "score": 0}
    {"rule": "fake_tld", "value": "com", "score": 20}
    {"rule": "com_prefix", "value": "com", "score": 30}
    {"rule": "many_hyphens", "value": 5, "score": 15}
    {"rule": "deep_subdomain", "value": 4, "score": 10}
    {"rule": "digits", "value": 6, "score": 10}
    {"rule": "random_label", "value": "xk7q2pz9w", "score": 15}
    {"rule": "long_label", "value": 31, "score": 10}

`where` is `root` for the root label (what the registrant, or a hosting platform's user, chose) and
`subdomain` for labels left of it. Only the strongest match counts per brand. A name under
`ignore_domains` or under a brand's own domains gets ``(0, [])`` unless it is also under
`watched_domains` (then only that match counts).
"""
from __future__ import annotations

import logging

from . import features
from .features import Name, parse_name, suffixes
from .rules import Watchlist
from .text import fold

log = logging.getLogger("scout.watchlist")

_RESULT_CACHE_MAX = 50_000
_BRAND_RULE_ORDER = {"brand_lookalike": 0, "brand_in_subdomain": 1, "brand_in_label": 2, "brand_other_root": 3}


def score_domain(domain: str, root_domain: str, watchlist: Watchlist) -> tuple[int, list[dict]]:
    """Score one name against a watchlist: ``(score, matches)``, score being the sum of the matches' scores.

    Pure: the same arguments always give the same result (the watchlist memoises recent results and hands
    out fresh copies, so callers may keep or change what they get). Never raises, whatever the strings.

    `domain` is the normalised name (lowercase, punycode `xn--` labels; a leading ``*.`` is ignored);
    `root_domain` its registrable domain by the Public Suffix List with its private section (what
    `scout.names.root_domain` gives: ``evil.co.uk``, ``user.github.io``). When `root_domain` is empty or
    not a suffix of `domain`, the last two labels are used.
    """
    key = (domain, root_domain)
    cache = watchlist.result_cache
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
    name = parse_name(domain, root_domain)
    if name is None:
        return 0, []
    seen = _walk_suffixes(name.domain, wl)
    if seen["hosting"] and len(seen["hosting"]) >= len(name.root) and name.domain != seen["hosting"]:
        # A platform the Public Suffix List does not know: its user's label is the root label.
        user_label = name.domain[: -len(seen["hosting"]) - 1].rsplit(".", 1)[-1]
        name = parse_name(name.domain, f"{user_label}.{seen['hosting']}")
    platform = _platform(name, seen["hosting"])
    matches: list[dict] = []
    if seen["watched"]:
        matches.append({"rule": "watched_root", "value": seen["watched"],
                        "score": wl.watched_domains[seen["watched"]]})
    if seen["ignored"] or _brands_own(name, seen, platform, wl):
        return (matches[0]["score"], matches) if matches else (0, [])
    if seen["tld"]:
        matches.append({"rule": "tld", "value": seen["tld"], "score": wl.tlds[seen["tld"]]})
    kw_hits, brand_hits = _needles(name, wl)
    matches += _keyword_matches(name, wl, platform, kw_hits)
    matches += _regex_matches(name, wl)
    matches += _brand_matches(name, wl, brand_hits)
    matches += _platform_matches(name, platform, seen["hosting"], wl)
    matches += _shape_matches(name, wl)
    if platform and platform != seen["hosting"] and wl.platforms["infrastructure_percent"] < 100:
        _discount_infrastructure(matches, platform, wl.platforms["infrastructure_percent"])
    return sum(m["score"] for m in matches), matches


_KEPT_ON_ENDPOINTS = frozenset(("watched_root", "tld", "keyword", "regex"))
_NAMING_RULES = frozenset(("brand_in_subdomain", "brand_in_label", "brand_lookalike", "brand_other_root",
                           "fake_tld", "com_prefix"))


def _discount_infrastructure(matches: list[dict], platform: str, pct: int) -> None:
    """CDN and cloud endpoints (provider suffixes that are not hosting platforms) are machine-made and
    spell their customers' names left of the root: itunes-apple.com.akadns.net,
    app-1894220976.us-east-2.elb.amazonaws.com. With `platforms.infrastructure_percent` below 100, brand
    and TLD-looking matches in their subdomains count nothing there, the other shape rules `pct` %."""
    for m in matches:
        if m["rule"] in _KEPT_ON_ENDPOINTS:
            continue
        naming = m["rule"] in _NAMING_RULES and m.get("where", "subdomain") == "subdomain"
        m["score"] = 0 if naming else m["score"] * pct // 100
        m["endpoint_of"] = platform


def _walk_suffixes(domain: str, wl: Watchlist) -> dict:
    """What the name's suffixes are in the watchlist: the longest watched root, TLD rule and hosting
    platform, whether any is ignored, and the longest of the brands' own domains."""
    seen = {"watched": None, "ignored": False, "tld": None, "own": None, "hosting": None}
    info = wl.suffix_info
    if not info:
        return seen
    for s in suffixes(domain):
        it = info.get(s)
        if it is None:
            continue
        watched, ignored, tld, own, hosting = it
        if watched is not None and seen["watched"] is None:
            seen["watched"] = s
        seen["ignored"] = seen["ignored"] or ignored
        if tld is not None and seen["tld"] is None:
            seen["tld"] = s
        if own and seen["own"] is None:
            seen["own"] = s
        if hosting and seen["hosting"] is None:
            seen["hosting"] = s
    return seen


def _platform(name: Name, hosting: str | None) -> str | None:
    """The provider suffix the name's root label sits on (a listed hosting platform or a suffix from the
    Public Suffix List's private section), or None for an ordinary registered domain."""
    if hosting and name.root.endswith("." + hosting):
        return hosting
    return name.suffix if features.private_suffix(name.suffix) else None


def _brands_own(name: Name, seen: dict, platform: str | None, wl: Watchlist) -> bool:
    """Is the name under a brand's own domain, or its `label.*` under a TLD the watchlist does not
    distrust (google.de, not google.tk)? Not when a user platform sits below the brand's domain:
    bucket.s3.amazonaws.com is a user's, not Amazon's."""
    own = seen["own"]
    if own and not (platform and len(platform) > len(own)):
        return True
    return not platform and not seen["tld"] and name.root_label in wl.own_labels


def _needles(name: Name, wl: Watchlist) -> tuple[list[int], list[tuple[int, str]]]:
    """Keywords in the name (or its skeleton: l0gin), and brands spelled out inside its labels as
    [(brand index, what was found)]: one pass of the watchlist's needle index."""
    n_kw = len(wl.keywords)
    hits = wl.needles.find(name.text)
    kws = [n for n in hits if n < n_kw]
    if name.folded != name.text:
        kws = sorted(set(kws).union(n for n in wl.needles.find(name.folded) if n < n_kw))
    if name.text.isascii():
        sub = wl.brands.substring
        brands = [(sub[n - n_kw][0], sub[n - n_kw][1]) for n in hits if n >= n_kw]
    else:
        brands = wl.brands.skeleton_substring_hits(name.text)
    return kws, brands


def _keyword_matches(name: Name, wl: Watchlist, platform: str | None, hits: list[int]) -> list[dict]:
    """Keywords anywhere in the name part, full score in what the registrant chose (the root label, or
    any label on a hosting platform), `keyword_rules.subdomain_percent` of it further left."""
    out = []
    root = name.folded.rsplit(".", 1)[-1]
    pct = wl.keyword_rules["subdomain_percent"]
    for n in hits:
        kw, kwf, sc = wl.keywords[n]
        where = "root" if platform or kwf in root or kw in name.root_label else "subdomain"
        out.append({"rule": "keyword", "value": kw, "where": where,
                    "score": sc if where == "root" else sc * pct // 100})
    return out


def _regex_matches(name: Name, wl: Watchlist) -> list[dict]:
    out = []
    d = name.domain
    full = name.text + ("." + name.suffix if name.suffix else "") if "xn--" in d else d  # decoded form too
    for rname, pat, rx, sc in wl.regexes:
        if rx.search(d) or (full != d and rx.search(full)):
            out.append({"rule": "regex", "value": rname, "pattern": pat, "score": sc})
    return out


def _brand_matches(name: Name, wl: Watchlist, substring_hits: list[tuple[int, str]]) -> list[dict]:
    """Per brand, the strongest way the name imitates it."""
    idx = wl.brands
    if not len(idx):
        return []
    best: dict[int, dict] = {}
    last = len(name.labels) - 1
    for li, label in enumerate(name.labels):
        for tok, i, kind, dist in idx.label_hits(label):
            m = _brand_match(name, label, tok, i, kind, dist, "root" if li == last else "subdomain", wl)
            if m:
                _offer(best, i, m)
    for i, found in substring_hits:
        for li, label in enumerate(name.labels):
            text = label if name.text.isascii() else fold(label)
            if found in text and found != text:
                _offer(best, i, _in_label(idx.brands[i].name, label, "root" if li == last else "subdomain", wl))
                break
    order = sorted(best, key=lambda i: (_BRAND_RULE_ORDER[best[i]["rule"]], idx.brands[i].name))
    return [best[i] for i in order]


def _brand_match(name: Name, label: str, tok: str, i: int, kind: str, dist: int, where: str,
                 wl: Watchlist) -> dict | None:
    """The match for one way a token holds brand `i` (see BrandIndex.label_hits), or None."""
    rules = wl.brand_rules
    bname = wl.brands.brands[i].name
    whole = tok == label
    if kind == "affix":
        return _in_label(bname, label, where, wl)
    if kind != "exact":
        return {"rule": "brand_lookalike", "brand": bname, "label": label, "token": tok, "where": where,
                "homoglyph": kind == "homoglyph", "distance": dist, "score": rules["lookalike"]}
    if where == "subdomain":
        if not whole and len(bname) < rules["substring_min_length"]:
            return None  # att-launches.appsflyersdk.com: a short brand inside a subdomain label is a word
        if bname in name.root_label:
            return None  # m.alibaba.com.gds.alibabadns.com: the root holds the brand, matched on its own
        return {"rule": "brand_in_subdomain", "brand": bname, "label": label, "where": where, "root": name.root,
                "score": rules["in_subdomain"]}
    if whole:
        return {"rule": "brand_other_root", "brand": bname, "label": label, "where": where, "root": name.root,
                "score": rules["other_root"]}
    return _in_label(bname, label, where, wl)


def _in_label(brand: str, label: str, where: str, wl: Watchlist) -> dict:
    return {"rule": "brand_in_label", "brand": brand, "label": label, "where": where,
            "homoglyph": brand not in label, "score": wl.brand_rules["in_label"]}


def _offer(best: dict[int, dict], i: int, m: dict) -> None:
    cur = best.get(i)
    if cur is None or (m["score"], -_BRAND_RULE_ORDER[m["rule"]]) > (cur["score"], -_BRAND_RULE_ORDER[cur["rule"]]):
        best[i] = m


def _platform_matches(name: Name, platform: str | None, hosting: str | None, wl: Watchlist) -> list[dict]:
    p = wl.platforms
    if hosting and platform == hosting and p["hosting"]:
        return [{"rule": "hosting_platform", "value": hosting, "score": p["hosting"]}]
    if platform and p["private_suffix"]:
        return [{"rule": "private_suffix", "value": platform, "score": p["private_suffix"]}]
    return []


def _shape_matches(name: Name, wl: Watchlist) -> list[dict]:
    out = []
    for rule, cfg in wl.shape_rules:
        hit = _SHAPE_CHECKS[rule](name, cfg, wl)
        if hit is not None:
            out.append({"rule": rule, "value": hit[0], "score": hit[1]})
    return out


def _at_least(n: int, cfg: dict, key: str = "min"):
    return (n, cfg["score"]) if n >= cfg[key] > 0 else None


def _fake_tld(name: Name, cfg: dict, wl: Watchlist):
    tok = features.fake_tld_token(name, wl.fake_tlds)
    return (tok, cfg["score"]) if tok else None


def _com_prefix(name: Name, cfg: dict, wl: Watchlist):
    tok = features.com_prefix(name, wl.fake_tlds)
    return (tok, cfg["score"]) if tok else None


def _random_label(name: Name, cfg: dict, wl: Watchlist):
    root = name.root_label
    return (root, cfg["score"]) if features.looks_random(root, cfg["min_length"]) else None


def _per_unit(n: int, cfg: dict, value):
    """`score` points per unit of `n` (up to `max` units)."""
    n = min(n, cfg["max"])
    return (value, n * cfg["score"]) if n > 0 else None


def _root_hyphens(name: Name, cfg: dict, wl: Watchlist):
    root = name.root_label
    n = root.count("-") - (2 if root.startswith("xn--") else 0)
    return _per_unit(n, cfg, min(n, cfg["max"]))


def _random_subdomain(name: Name, cfg: dict, wl: Watchlist):
    hit = next((lab for lab in name.subdomains if features.looks_random(lab, cfg["min_length"])), None)
    return (hit, cfg["score"]) if hit else None


# Checks on the name's form (the `structure` section, whose order is the order matches are listed in).
# Each gives (value, points) or None; rules whose score is 0 are not run.
_SHAPE_CHECKS = {
    "fake_tld": _fake_tld,
    "com_prefix": _com_prefix,
    "many_hyphens": lambda name, cfg, wl: _at_least(features.hyphen_count(name), cfg),
    "deep_subdomain": lambda name, cfg, wl: _at_least(len(name.labels) - 1, cfg),
    "digits": lambda name, cfg, wl: _at_least(features.digit_count(name.root_label), cfg),
    "random_label": _random_label,
    "long_label": lambda name, cfg, wl: _at_least(len(name.root_label), cfg),
    "label_length": lambda name, cfg, wl: _per_unit(len(name.root_label) - cfg["from"], cfg, len(name.root_label)),
    "root_hyphens": _root_hyphens,
    "random_subdomain": _random_subdomain,
}

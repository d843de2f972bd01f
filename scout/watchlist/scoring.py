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
    matches += _keyword_matches(name, wl, platform)
    matches += _regex_matches(name, wl)
    matches += _brand_matches(name, wl)
    matches += _platform_matches(name, platform, seen["hosting"], wl)
    matches += _shape_matches(name, wl)
    if platform and platform != seen["hosting"]:
        _discount_infrastructure(matches, platform, wl.platforms["infrastructure_percent"])
    return sum(m["score"] for m in matches), matches


_KEPT_ON_ENDPOINTS = frozenset(("watched_root", "tld", "keyword", "regex"))
_NAMING_RULES = frozenset(("brand_in_subdomain", "brand_in_label", "brand_lookalike", "brand_other_root",
                           "fake_tld", "com_prefix"))


def _discount_infrastructure(matches: list[dict], platform: str, pct: int) -> None:
    """CDN and cloud endpoints (provider suffixes that are not hosting platforms) are machine-made and
    spell their customers' names left of the root: itunes-apple.com.akadns.net,
    app-1894220976.us-east-2.elb.amazonaws.com. Brand and TLD-looking matches in their subdomains count
    nothing, the other shape rules `pct` %."""
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


def _keyword_matches(name: Name, wl: Watchlist, platform: str | None) -> list[dict]:
    """Keywords anywhere in the name part, full score in what the registrant chose (the root label, or
    any label on a hosting platform), `keyword_rules.subdomain_percent` of it further left."""
    if not wl.keywords:
        return []
    hits = set(wl.needles.find(name.folded))
    if name.folded != name.text:
        hits.update(wl.needles.find(name.text))
    out = []
    root = name.folded.rsplit(".", 1)[-1]
    pct = wl.keyword_rules["subdomain_percent"]
    for n in sorted(hits):
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


def _brand_matches(name: Name, wl: Watchlist) -> list[dict]:
    """Per brand, the strongest way the name imitates it."""
    idx = wl.brands
    if not len(idx):
        return []
    best: dict[int, dict] = {}
    last = len(name.labels) - 1
    for li, label in enumerate(name.labels):
        where = "root" if li == last else "subdomain"
        for tok in (label, *label.split("-")) if "-" in label else (label,):
            if tok:
                _offer_token(best, name, label, tok, where, wl)
    for i, found in idx.substring_hits(name.text):
        for li, label in enumerate(name.labels):
            text = label if name.text.isascii() else fold(label)
            if found in text and found != text:
                _offer(best, i, _in_label(idx.brands[i].name, label, "root" if li == last else "subdomain", wl))
                break
    order = sorted(best, key=lambda i: (_BRAND_RULE_ORDER[best[i]["rule"]], idx.brands[i].name))
    return [best[i] for i in order]


def _offer_token(best: dict, name: Name, label: str, tok: str, where: str, wl: Watchlist) -> None:
    idx, rules = wl.brands, wl.brand_rules
    whole = tok == label
    for i, kind, dist in idx.token_hits(tok):
        bname = idx.brands[i].name
        if kind == "exact" and where == "subdomain":
            if not whole and len(bname) < rules["substring_min_length"]:
                continue  # att-launches.appsflyersdk.com: a short brand inside a subdomain label is a word
            if bname in name.root_label:
                continue  # m.alibaba.com.gds.alibabadns.com: the root holds the brand, matched on its own
        if kind != "exact":
            m = {"rule": "brand_lookalike", "brand": bname, "label": label, "token": tok, "where": where,
                 "homoglyph": kind == "homoglyph", "distance": dist, "score": rules["lookalike"]}
        elif where == "subdomain":
            m = {"rule": "brand_in_subdomain", "brand": bname, "label": label, "where": where, "root": name.root,
                 "score": rules["in_subdomain"]}
        elif whole:
            m = {"rule": "brand_other_root", "brand": bname, "label": label, "where": where, "root": name.root,
                 "score": rules["other_root"]}
        else:
            m = _in_label(bname, label, where, wl)
        _offer(best, i, m)
    for i in idx.affix_hits(tok):
        _offer(best, i, _in_label(idx.brands[i].name, label, where, wl))


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
    st = wl.structure
    out = []

    def add(rule: str, value) -> None:
        out.append({"rule": rule, "value": value, "score": st[rule]["score"]})

    if st["fake_tld"]["score"] and (tok := features.fake_tld_token(name, wl.fake_tlds)):
        add("fake_tld", tok)
    if st["com_prefix"]["score"] and (tok := features.com_prefix(name, wl.fake_tlds)):
        add("com_prefix", tok)
    n = features.hyphen_count(name) if st["many_hyphens"]["score"] else 0
    if n >= st["many_hyphens"]["min"] > 0:
        add("many_hyphens", n)
    n = len(name.labels) - 1
    if st["deep_subdomain"]["score"] and n >= st["deep_subdomain"]["min"] > 0:
        add("deep_subdomain", n)
    root = name.root_label
    n = features.digit_count(root) if st["digits"]["score"] else 0
    if n >= st["digits"]["min"] > 0:
        add("digits", n)
    if st["random_label"]["score"] and features.looks_random(root, st["random_label"]["min_length"]):
        add("random_label", root)
    if st["long_label"]["score"] and len(root) >= st["long_label"]["min"] > 0:
        add("long_label", len(root))
    out += _graded_shape(name, st)
    return out


def _graded_shape(name: Name, st: dict) -> list[dict]:
    """Rules whose points grow with what they count: `score` points per character of the root label past
    `from` and per hyphen in it (each up to `max` of them); a machine-made subdomain label."""
    out = []
    root = name.root_label
    rule = st["label_length"]
    n = min(len(root) - rule["from"], rule["max"])
    if rule["score"] and n > 0:
        out.append({"rule": "label_length", "value": len(root), "score": n * rule["score"]})
    rule = st["root_hyphens"]
    n = min(root.count("-") - (2 if root.startswith("xn--") else 0), rule["max"])
    if rule["score"] and n > 0:
        out.append({"rule": "root_hyphens", "value": n, "score": n * rule["score"]})
    rule = st["random_subdomain"]
    if rule["score"]:
        hit = next((lab for lab in name.subdomains if features.looks_random(lab, rule["min_length"])), None)
        if hit:
            out.append({"rule": "random_subdomain", "value": hit, "score": rule["score"]})
    return out

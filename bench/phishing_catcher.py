"""A classic phishing_catcher-style scorer, the baseline the watchlist is measured against.

Written from scratch from phishing_catcher's public description (its README and write-ups): a sum of
suspicious-keyword weights (brands weigh most), a bonus for a suspicious TLD, the Shannon entropy of the
name times ten, a Levenshtein-distance-1 bonus for words one edit from a heavy keyword, a punycode
bonus, and points for many hyphens and deep subdomains. Its thresholds: 65 suspicious, 80 likely, 90
very likely. Name only, like the watchlist's score. Its keyword lists here are our own choice.
"""
from __future__ import annotations

import math
import re
from collections import Counter

from rapidfuzz.distance import Levenshtein

KEYWORDS = {
    # brands
    "paypal": 60, "apple": 60, "icloud": 60, "appleid": 70, "itunes": 50, "microsoft": 60, "outlook": 60,
    "office365": 70, "hotmail": 60, "live": 20, "google": 60, "gmail": 60, "facebook": 60, "instagram": 60,
    "whatsapp": 60, "netflix": 70, "amazon": 60, "ebay": 50, "linkedin": 60, "dropbox": 60, "docusign": 60,
    "adobe": 50, "wellsfargo": 70, "chase": 40, "bankofamerica": 70, "citibank": 60, "hsbc": 50,
    "santander": 60, "dhl": 40, "fedex": 50, "usps": 50, "binance": 70, "coinbase": 70, "metamask": 70,
    "blockchain": 60, "steam": 40, "discord": 50, "telegram": 50, "yahoo": 50, "americanexpress": 70,
    # credentials and urgency
    "login": 25, "log-in": 25, "signin": 25, "sign-in": 25, "logon": 25, "account": 25, "verify": 25,
    "verification": 25, "secure": 20, "security": 20, "update": 20, "confirm": 20, "auth": 15,
    "authenticate": 20, "password": 25, "support": 15, "service": 10, "webscr": 40, "recover": 20,
    "unlock": 20, "suspended": 25, "limited": 15, "alert": 15, "billing": 20, "invoice": 15, "payment": 20,
    "wallet": 25, "bank": 20, "banking": 20, "online": 10, "customer": 10, "client": 10, "free": 10,
    "bonus": 10, "gift": 10, "claim": 15, "airdrop": 25, "giveaway": 25, "refund": 20, "helpdesk": 20,
    "mail": 10, "webmail": 25, "outlook365": 60, "sso": 15, "id": 5,
}
HEAVY = [k for k, v in KEYWORDS.items() if v >= 60]
TLDS = {"tk", "ml", "ga", "cf", "gq", "xyz", "top", "icu", "buzz", "cyou", "rest", "sbs", "cfd", "bond",
        "click", "link", "live", "online", "site", "shop", "store", "support", "help", "info", "zip", "mov",
        "pw", "cc", "club", "work", "fit", "men", "loan", "win", "date", "review", "country", "stream",
        "download", "racing", "party", "science", "gdn", "bid", "trade", "webcam", "kim", "ooo"}
FAKE_TLD_WORDS = {"com", "net", "org", "edu", "gov", "info"}
_WORDS = re.compile(r"[\W_]+")


def entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


def score(domain: str) -> int:
    """phishing_catcher-style score of one name (higher is more suspicious)."""
    d = domain.strip().lower().rstrip(".")
    if d.startswith("*."):
        d = d[2:]
    total = round(entropy(d) * 10)
    if "xn--" in d:
        total += 30
    labels = d.split(".")
    if labels[-1] in TLDS:
        total += 20
    body = ".".join(labels[:-1])
    for kw, w in KEYWORDS.items():
        if kw in body:
            total += w
    for word in _WORDS.split(body):
        if word and word not in KEYWORDS and word not in FAKE_TLD_WORDS and len(word) >= 4:
            if any(Levenshtein.distance(word, kw, score_cutoff=1) == 1 for kw in HEAVY):
                total += 70
                break
    if any(w in FAKE_TLD_WORDS for w in labels[:-2]):
        total += 10
    if d.count("-") >= 4:
        total += d.count("-") * 3
    if d.count(".") >= 3:
        total += d.count(".") * 3
    return total

"""Watchlist score of each item and the WHOIS urgency it gives: watched roots and high scores are looked
up first (broker priorities), and WHOIS_MIN_SCORE / ENRICH=watchlist decide on the score."""
from __future__ import annotations

from scout.watchlist import score_domain


def urgency_for(score: int, matches: list) -> int:
    """0 (WHOIS first) .. 9 (last): watched roots and high scores jump the WHOIS queue."""
    if any(m.get("rule") == "watched_root" for m in matches):
        return 0
    for threshold, urgency in ((100, 1), (80, 2), (65, 3), (40, 4), (1, 5)):
        if score >= threshold:
            return urgency
    return 7


def score_item(item: dict, watchlist) -> int:
    """Watchlist score, matches and WHOIS urgency on the item (once: a scored item keeps its score)."""
    if "score" not in item:
        item["score"], item["matches"] = score_domain(item["d"], item["r"], watchlist)
        item["urgency"] = urgency_for(item["score"], item["matches"])
    return item["score"]


def score_items(items: list[dict], watchlist) -> list[dict]:
    for it in items:
        score_item(it, watchlist)
    return items

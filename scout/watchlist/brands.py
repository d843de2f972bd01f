"""Brands: how a label or part of one imitates a watched brand, found fast through indexes built once.

A `BrandIndex` answers, for one token (a label or a hyphen-separated part of one), which brands it is,
looks like, or holds with a boundary (a known word or digits beside it: ``appleid``, ``paypal24``)
(`token_hits`, and `label_hits` for all the tokens of a label), and, for internationalised names, which
long brands their skeleton holds. Answers are memoised: names in CT repeat their parts endlessly.
"""
from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from .text import NeedleIndex, fold, keyboard_typo, osa_distance

_TOKEN_CACHE_MAX = 100_000


@dataclass(frozen=True)
class Brand:
    name: str
    skeleton: str
    domains: frozenset            # the brand's own domains: names under them are the brand's
    any_suffix_labels: frozenset  # from "label.*": that label under any suffix is the brand's
    substring: bool               # may be found anywhere inside a longer label
    max_distance: int             # typo distance allowed (0: homoglyphs only)


def _positions(text: str, part: str):
    """Every index where `part` starts in `text`."""
    i = text.find(part)
    while i >= 0:
        yield i
        i = text.find(part, i + 1)


class BrandIndex:
    """The brands of a watchlist, indexed. Treat as immutable (the caches are private)."""

    def __init__(self, brands: list[Brand], affixes: frozenset, substring_min_length: int):
        self.brands = tuple(brands)
        self.affixes = affixes
        self.by_skeleton: dict[str, tuple[int, ...]] = {}
        for i, b in enumerate(self.brands):
            self.by_skeleton[b.skeleton] = self.by_skeleton.get(b.skeleton, ()) + (i,)
        # Brands matched with typos: one rapidfuzz pass (in C) over their skeletons finds every one within
        # edit distance 2; distance-1 brands then need a plausible slip (keyboard_typo).
        self._typo = [(i, b.skeleton, b.max_distance) for i, b in enumerate(self.brands) if b.max_distance]
        self._typo_skeletons = [bsk for _i, bsk, _d in self._typo]
        self._typo_lengths = frozenset(len(bsk) + d for _i, bsk, k in self._typo for d in range(-k, k + 1))
        self.substring = tuple((i, b.name, b.skeleton) for i, b in enumerate(self.brands)
                               if b.substring and len(b.skeleton) >= substring_min_length)
        self._substring_skeletons = NeedleIndex([sk for _i, _name, sk in self.substring])
        self._skeleton_list = list(self.by_skeleton)
        self._all_skeletons = NeedleIndex(self._skeleton_list)
        self._token_cache: dict[str, tuple] = {}
        self._label_cache: dict[str, tuple] = {}

    def __len__(self) -> int:
        return len(self.brands)

    def label_hits(self, label: str) -> tuple:
        """What a label's tokens (the label and its hyphen-separated parts) hold, memoised per label:
        ((token, brand index, "exact" | "homoglyph" | "typo" | "affix", distance), ...). Empty for
        nearly every label, which is what makes this the fast path."""
        hit = self._label_cache.get(label)
        if hit is None:
            hit = ()
            for tok in (label, *label.split("-")) if "-" in label else (label,):
                if tok and not tok.isdigit():
                    hit += tuple((tok, *h) for h in self.token_hits(tok))
            if len(self._label_cache) >= _TOKEN_CACHE_MAX:
                self._label_cache.clear()
            self._label_cache[label] = hit
        return hit

    def token_hits(self, token: str) -> tuple:
        """((brand index, "exact" | "homoglyph" | "typo" | "affix", distance to the brand's name), ...):
        the brands a label or hyphen-separated part of one is, looks like, or holds with a boundary."""
        hit = self._token_cache.get(token)
        if hit is None:
            sk = fold(token)
            hit = self._lookalikes(token, sk)
            hit += tuple((i, "affix", 0) for i in self._affixed(sk))
            if len(self._token_cache) >= _TOKEN_CACHE_MAX:
                self._token_cache.clear()
            self._token_cache[token] = hit
        return hit

    def _lookalikes(self, token: str, sk: str) -> tuple:
        found: dict[int, tuple] = {}
        for i in self.by_skeleton.get(sk, ()):
            name = self.brands[i].name
            found[i] = ("exact", 0) if token == name else ("homoglyph", osa_distance(token, name))
        if len(sk) in self._typo_lengths:
            for bsk, dist, n in process.extract(sk, self._typo_skeletons, scorer=OSA.distance, score_cutoff=2,
                                                limit=None):
                i, _bsk, k = self._typo[n]
                if i not in found and 0 < dist <= k and (k > 1 or keyboard_typo(sk, bsk)):
                    found[i] = ("typo", osa_distance(token, self.brands[i].name))
        return tuple((i, kind, dist) for i, (kind, dist) in found.items())

    def _affixed(self, sk: str) -> list[int]:
        """Brands the skeleton `sk` holds with, on each side, nothing, a known word or digits: ``appleid``,
        ``myapple`` and ``myappleid`` hold apple; ``pineapple`` does not."""
        found = set()
        for n in self._all_skeletons.find(sk):
            bsk = self._skeleton_list[n]
            if bsk != sk and any(self._is_affix(sk[:i]) and self._is_affix(sk[i + len(bsk):])
                                 for i in _positions(sk, bsk)):
                found.update(self.by_skeleton[bsk])
        return sorted(found)

    def _is_affix(self, part: str) -> bool:
        return not part or part in self.affixes or part.isdigit()

    def skeleton_substring_hits(self, text: str) -> list[tuple[int, str]]:
        """For internationalised names: brands allowed anywhere in a label (`substring: true`, long enough)
        whose skeleton is in the skeleton of `text`, as [(brand index, skeleton)]. ASCII names are looked
        up spelled out (Watchlist.needles): ASCII skeletons match words by chance ("reklama" holds
        "klama", the skeleton of "klarna")."""
        return [(self.substring[n][0], self.substring[n][2]) for n in self._substring_skeletons.find(fold(text))]

"""Brands: how a label or part of one imitates a watched brand, found fast through indexes built once.

A `BrandIndex` answers, for one token (a label or a hyphen-separated part of one), which brands it is or
looks like (`token_hits`), which brands it holds with a boundary (`affix_hits`: brand + a known word or
digits, ``appleid``, ``paypal24``), and which long brands it holds anywhere (`substring_hits`). Answers
are memoised per token: names in CT repeat their parts endlessly.
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


def _deletions1(s: str) -> list[str]:
    """`s` and every string made from it by deleting one character."""
    return [s] + [s[:i] + s[i + 1:] for i in range(len(s))]


class BrandIndex:
    """The brands of a watchlist, indexed. Treat as immutable (the caches are private)."""

    def __init__(self, brands: list[Brand], affixes: frozenset, substring_min_length: int):
        self.brands = tuple(brands)
        self.affixes = affixes
        self.by_skeleton: dict[str, tuple[int, ...]] = {}
        typo1: dict[str, set[int]] = {}
        self._typo2: list[tuple[int, str]] = []
        for i, b in enumerate(self.brands):
            self.by_skeleton[b.skeleton] = self.by_skeleton.get(b.skeleton, ()) + (i,)
            if b.max_distance == 1:
                for v in _deletions1(b.skeleton):
                    typo1.setdefault(v, set()).add(i)
            elif b.max_distance >= 2:
                self._typo2.append((i, b.skeleton))
        self._typo1 = {k: tuple(v) for k, v in typo1.items()}
        self._typo2_skeletons = [bsk for _i, bsk in self._typo2]
        self._typo2_min = min((len(bsk) for bsk in self._typo2_skeletons), default=0) - 2
        self._typo1_lengths = {len(b.skeleton) + d for b in self.brands if b.max_distance == 1 for d in (-1, 0, 1)}
        self.substring = tuple((i, b.name, b.skeleton) for i, b in enumerate(self.brands)
                               if b.substring and len(b.skeleton) >= substring_min_length)
        self._substring_names = NeedleIndex([name for _i, name, _sk in self.substring])
        self._substring_skeletons = NeedleIndex([sk for _i, _name, sk in self.substring])
        self._lengths = sorted({len(s) for s in self.by_skeleton})
        self._affix_lengths = sorted({len(a) for a in affixes})
        self._token_cache: dict[str, tuple] = {}
        self._affix_cache: dict[str, tuple] = {}

    def __len__(self) -> int:
        return len(self.brands)

    def token_hits(self, token: str) -> tuple:
        """((brand index, "exact" | "homoglyph" | "typo", distance to the brand's name), ...)."""
        hit = self._token_cache.get(token)
        if hit is None:
            hit = self._token_hits(token)
            if len(self._token_cache) >= _TOKEN_CACHE_MAX:
                self._token_cache.clear()
            self._token_cache[token] = hit
        return hit

    def _token_hits(self, token: str) -> tuple:
        sk = fold(token)
        found: dict[int, tuple] = {}
        for i in self.by_skeleton.get(sk, ()):
            name = self.brands[i].name
            found[i] = ("exact", 0) if token == name else ("homoglyph", osa_distance(token, name))
        if len(sk) in self._typo1_lengths:
            for v in _deletions1(sk):
                for i in self._typo1.get(v, ()):
                    if i not in found and keyboard_typo(sk, self.brands[i].skeleton):
                        found[i] = ("typo", osa_distance(token, self.brands[i].name))
        if self._typo2 and len(sk) >= self._typo2_min:
            for _bsk, _dist, n in process.extract_iter(sk, self._typo2_skeletons, scorer=OSA.distance,
                                                      score_cutoff=2):
                i = self._typo2[n][0]
                if i not in found:
                    found[i] = ("typo", osa_distance(token, self.brands[i].name))
        return tuple((i, kind, dist) for i, (kind, dist) in found.items())

    def affix_hits(self, token: str) -> tuple:
        """Brands `token` holds with a boundary: the brand (or its homoglyph) then, or after, a known word
        or digits, or between two such words. ``appleid``, ``myapple`` and ``myappleid`` hold apple;
        ``pineapple`` does not."""
        hit = self._affix_cache.get(token)
        if hit is None:
            found = set()
            sk = fold(token)
            found.update(self._brand_then_affix(sk, exact=False))
            for n in self._affix_lengths:
                if n < len(sk) and sk[:n] in self.affixes:
                    found.update(self._brand_then_affix(sk[n:], exact=True))
            hit = tuple(sorted(found))
            if len(self._affix_cache) >= _TOKEN_CACHE_MAX:
                self._affix_cache.clear()
            self._affix_cache[token] = hit
        return hit

    def _brand_then_affix(self, sk: str, exact: bool) -> set[int]:
        """Brands that `sk` starts or ends with next to an affix or digits (or, with `exact`, is)."""
        by_sk, affixes = self.by_skeleton, self.affixes
        found = set(by_sk.get(sk, ())) if exact else set()
        for k in self._lengths:
            if k >= len(sk):
                break
            for brand_part, rest in ((sk[:k], sk[k:]), (sk[-k:], sk[:-k])):
                if brand_part in by_sk and (rest in affixes or rest.isdigit()):
                    found.update(by_sk[brand_part])
        return found

    def substring_hits(self, text: str) -> list[tuple[int, str]]:
        """Brands allowed anywhere in a label (`substring: true`, long enough), found in `text` (a name's
        labels joined by dots): [(brand index, what was found)], the brand spelled out in ASCII text, or
        its skeleton in the skeleton of an internationalised one (ASCII skeletons match words by chance:
        "reklama" holds "klama", the skeleton of "klarna")."""
        if text.isascii():
            return [(self.substring[n][0], self.substring[n][1]) for n in self._substring_names.find(text)]
        return [(self.substring[n][0], self.substring[n][2]) for n in self._substring_skeletons.find(fold(text))]

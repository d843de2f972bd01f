"""Text helpers for names: homoglyph skeletons, punycode labels, edit distances, keyboard typos, shape.

Pure functions, no watchlist knowledge. `fold` uses the Unicode confusables data (UTS #39, as shipped by
the `confusable-homoglyphs` package) for non-ASCII characters and a short table of ASCII look-alikes
(digits standing in for letters, ``rn`` for ``m``).
"""
from __future__ import annotations

import json
import math
import re
import string
import unicodedata
from collections import Counter
from functools import lru_cache
from importlib import resources

from rapidfuzz.distance import OSA

# Digits that stand in for letters in ASCII look-alikes (paypa1, g00gle, micr0s0ft), and letter pairs
# that render like one letter. Not in the Unicode data: those are ASCII-to-ASCII.
_ASCII_TABLE = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t"})
_MULTI = (("rn", "m"), ("vv", "w"))
# Where UTS #39 picks a prototype that is not what a lowercase domain shows: the Cyrillic palochka is
# drawn as an l in lowercase text (аррӏе reads "apple"), not as an i.
_OVERRIDES = {"ӏ": "l", "ǀ": "l"}


@lru_cache(maxsize=1)
def _unicode_table() -> dict[int, str]:
    """Every single character the confusables data says looks like an ASCII letter or digit -> that one."""
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    table: dict[int, str] = {}
    for target in string.ascii_lowercase + string.digits:
        for entry in data.get(target, ()):
            c = entry["c"]
            if len(c) == 1 and not c.isascii():
                table[ord(c)] = target
    table.update({ord(k): v for k, v in _OVERRIDES.items()})
    return table


def fold(text: str) -> str:
    """The homoglyph skeleton of `text`: two strings that look alike fold to the same string.

    >>> fold("pаypa1")   # Cyrillic а, digit one
    'paypal'
    >>> fold("rnicrosoft")
    'microsoft'
    """
    if not text.isascii():
        text = text.lower().translate(_unicode_table())
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c)).translate(_unicode_table())
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
    With `limit`, any answer above it is returned as limit + 1."""
    return OSA.distance(a, b, score_cutoff=limit)


# --- Keyboard typos ----------------------------------------------------------------------------------------
_ROWS = ("1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, frozenset]:
    pos = {c: (r, i + 0.5 * r) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    return {a: frozenset(b for b, (r2, x2) in pos.items() if b != a and abs(r2 - r) <= 1 and abs(x2 - x) <= 1)
            for a, (r, x) in pos.items()}


KEY_NEIGHBOURS = _neighbours()
# Letters people misread for each other (beyond what `fold` already maps).
_SIMILAR = {frozenset(p) for p in ("il", "gq", "uv", "ce", "nh")}


def _plausible_substitution(typed: str, meant: str, i: int) -> bool:
    c, m = typed[i], meant[i]
    return (c in KEY_NEIGHBOURS.get(m, ()) or frozenset((c, m)) in _SIMILAR
            or (i > 0 and c == meant[i - 1]) or (i + 1 < len(meant) and c == meant[i + 1]))


def keyboard_typo(typed: str, meant: str) -> bool:
    """Is `typed` one slip of the fingers (or eyes) away from `meant`? A neighbouring key or a look-alike
    letter in place of one, two neighbours swapped, a doubled key or one next to its neighbour pressed too,
    a letter left out inside the word (not the first or the last: "cloud" is no slip on "icloud", nor
    "telegra" on "telegram")."""
    lt, lm = len(typed), len(meant)
    if typed == meant or abs(lt - lm) > 1:
        return False
    i = 0
    while i < min(lt, lm) and typed[i] == meant[i]:
        i += 1
    if lt == lm:
        if typed[i + 1:] == meant[i + 1:]:
            return _plausible_substitution(typed, meant, i)
        return (i + 1 < lt and typed[i] == meant[i + 1] and typed[i + 1] == meant[i]
                and typed[i + 2:] == meant[i + 2:])
    if lt == lm + 1 and typed[i + 1:] == meant[i:]:          # one key too many, at i
        c = typed[i]
        near = {typed[i - 1] if i else "", typed[i + 1] if i + 1 < lt else ""} - {""}
        return c in near or any(c in KEY_NEIGHBOURS.get(n, ()) for n in near)
    if lt + 1 == lm and meant[i + 1:] == typed[i:]:          # one letter left out, at i
        return 0 < i < lm - 1
    return False


# --- Shape of a label --------------------------------------------------------------------------------------


def entropy(text: str) -> float:
    """Shannon entropy of the characters of `text`, in bits."""
    n = len(text)
    if not n:
        return 0.0
    return -sum(k / n * math.log2(k / n) for k in Counter(text).values())


_ALNUM_RUN = re.compile(r"[0-9]+|[a-z]+")


def digit_letter_switches(text: str) -> int:
    """How often a label switches between digits and letters: a7k3x9 switches 5 times, web2 once."""
    return max(len(_ALNUM_RUN.findall(text.replace("-", ""))) - 1, 0)


class NeedleIndex:
    """Finds which of many short strings occur in a text through their first three letters: the text's
    trigrams are intersected (in C) with the needles' and only the few candidates are checked."""

    def __init__(self, needles: list[str]):
        self.by_trigram: dict[str, list] = {}
        self.short: list = []
        for n, needle in enumerate(needles):
            if len(needle) >= 3:
                self.by_trigram.setdefault(needle[:3], []).append((n, needle))
            else:
                self.short.append((n, needle))
        self.trigrams = frozenset(self.by_trigram)

    def find(self, text: str) -> list[int]:
        """Indexes of the needles found in `text`, in order."""
        grams = self.trigrams.intersection([text[i:i + 3] for i in range(len(text) - 2)])
        found = [n for g in grams for n, needle in self.by_trigram[g] if needle in text]
        if self.short:
            found += [n for n, needle in self.short if needle in text]
        if len(found) > 1:
            found = sorted(set(found))
        return found

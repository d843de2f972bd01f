"""Watchlists: the rules that score new domains, and the holder that reloads them when their file changes.

A watchlist is a YAML file (``WATCHLIST_FILE``; the bundled ``scout/watchlist/data/watchlist.yaml`` when
unset, which documents the format inline). ``load_watchlist`` parses and checks it into a ``Watchlist``;
``score_domain(domain, root_domain, watchlist)`` is a pure function returning ``(score, matches)``, where
``score`` is the sum of the ``score`` of every item in ``matches`` (see scoring.py for every rule).
``WatchlistHolder(path).current()`` is what the pipeline calls per domain.

Modules: text (homoglyph skeletons, punycode, keyboard typos, label shape), features (the parts of a name
and shape checks), brands (brand indexes), rules (loading and checking a file), scoring (score_domain),
holder (hot reload), evaluation (measuring a watchlist on labelled name lists).

May import: names.
"""
from .holder import WatchlistHolder
from .rules import DEFAULT_WATCHLIST_PATH, Watchlist, WatchlistError, load_watchlist
from .scoring import score_domain
from .text import decode_label, fold, osa_distance

__all__ = ["DEFAULT_WATCHLIST_PATH", "Watchlist", "WatchlistError", "WatchlistHolder", "decode_label", "fold",
           "load_watchlist", "osa_distance", "score_domain"]

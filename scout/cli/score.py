"""`scout score NAME… [--json] [--watchlist FILE]`: print the watchlist score and matches of names, for tuning.

Nothing else runs: no feed, no broker, no DNS. The watchlist is --watchlist FILE, else WATCHLIST_FILE, else
the bundled default. Exit codes: 0, 2 for a watchlist that does not load (the message says why).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from scout.config import get_settings
from scout.watchlist import WatchlistError, load_watchlist, score_domain

try:  # offline public suffix list; the pipeline's own normaliser lives elsewhere
    from publicsuffixlist import PublicSuffixList
    _PSL = PublicSuffixList()
except Exception:  # pragma: no cover - fall back to "last two labels"
    _PSL = None


def normalise(name: str) -> str:
    """Raw input -> lowercase, no trailing dot or wildcard, IDNA (punycode) labels. Best effort: a label
    that does not encode is kept lowercase as typed."""
    n = name.strip().rstrip(".").lower()
    while n.startswith("*."):
        n = n[2:]
    if n.isascii():
        return n
    try:
        import idna
        return idna.encode(n, uts46=True).decode("ascii")
    except Exception:
        pass
    labels = []
    for label in n.split("."):
        try:
            labels.append(label.encode("idna").decode("ascii") if label and not label.isascii() else label)
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def root_of(domain: str) -> str:
    if _PSL is not None:
        try:
            root = _PSL.privatesuffix(domain)
        except Exception:
            root = None
        if root:
            return root
    return ".".join(domain.rsplit(".", 2)[-2:])


def _describe(m: dict) -> str:
    rule = m["rule"]
    if rule.startswith("brand_"):
        what = f"{m['brand']} in {m.get('token', m['label'])!r}"
        if rule == "brand_lookalike":
            what += f" ({'homoglyph, ' if m.get('homoglyph') else ''}distance {m.get('distance')})"
    else:
        what = str(m.get("value"))
    return f"{rule} {what} {m['score']:+d}"


def _configured_watchlist() -> str:
    """WATCHLIST_FILE from the settings (environment and .env); the bare environment if they don't load."""
    try:
        return get_settings().watchlist_file
    except Exception:
        return os.environ.get("WATCHLIST_FILE", "").strip()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="scout score",
                                description="Print the watchlist score and matching rules of domain names.")
    p.add_argument("names", nargs="+", metavar="NAME", help="domain names (Unicode or punycode)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per name: name, domain, root_domain, score, matches")
    p.add_argument("--watchlist", metavar="FILE",
                   help="watchlist YAML (default: WATCHLIST_FILE, else the bundled list)")
    args = p.parse_args(argv)
    path = args.watchlist if args.watchlist is not None else _configured_watchlist()
    try:
        wl = load_watchlist(path or None)
    except WatchlistError as e:
        print(f"scout score: {e}", file=sys.stderr)
        return 2
    out = sys.stdout
    for raw in args.names:
        domain = normalise(raw)
        root = root_of(domain)
        score, matches = score_domain(domain, root, wl)
        if args.json:
            out.write(json.dumps({"name": raw, "domain": domain, "root_domain": root, "score": score,
                                  "matches": matches}, ensure_ascii=False) + "\n")
        else:
            shown = raw if raw == domain else f"{raw} ({domain})"
            detail = ", ".join(_describe(m) for m in matches) or "-"
            out.write(f"{score:5d}  {shown}  {detail}\n")
    out.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))

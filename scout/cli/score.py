"""`scout score NAME… [--json] [--watchlist FILE] [--alert-min-score N]`: the watchlist score, matches and
alert of names, for tuning; `scout score --eval DIR`: measure the watchlist on labelled lists.

Nothing else runs: no feed, no broker, no DNS. The watchlist is --watchlist FILE, else WATCHLIST_FILE, else
the bundled default; the alert threshold --alert-min-score N, else ALERT_MIN_SCORE (0: alerts off).
Exit codes: 0, 2 for a watchlist or evaluation folder that does not load (the message says why).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from scout.config import Settings, get_settings
from scout.names import root_domain, to_ascii
from scout.watchlist import WatchlistError, evaluation, load_watchlist, score_domain



def normalise(name: str) -> str:
    """Raw input -> lowercase, no trailing dot or wildcard, IDNA2008 A-labels (scout.names.to_ascii, as
    the pipeline). Best effort: a name that does not encode is kept lowercase as typed."""
    n = name.strip().rstrip(".").lower()
    while n.startswith("*."):
        n = n[2:]
    if n.isascii():
        return n
    return to_ascii(n) or n


def root_of(domain: str) -> str:
    """The pipeline's root_domain (PSL, private section included); a bare label is its own."""
    return root_domain(domain) if domain else domain


def _describe(m: dict) -> str:
    rule = m["rule"]
    if rule.startswith("brand_"):
        what = f"{m['brand']} in {m.get('token', m['label'])!r}"
        if rule == "brand_lookalike":
            what += f" ({'homoglyph, ' if m.get('homoglyph') else ''}distance {m.get('distance')})"
    else:
        what = str(m.get("value"))
    return f"{rule} {what} {m['score']:+d}"


def _configured() -> tuple[str, int]:
    """(WATCHLIST_FILE, ALERT_MIN_SCORE) from the settings (environment and .env); the bare environment
    (and the settings' defaults) if they don't load."""
    try:
        s = get_settings()
        return s.watchlist_file, s.alert_min_score
    except Exception:
        raw = os.environ.get("ALERT_MIN_SCORE", "").strip()
        return (os.environ.get("WATCHLIST_FILE", "").strip(),
                int(raw) if raw.isdigit() else Settings().alert_min_score)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scout score",
                                description="Print the watchlist score, matching rules and alert of domain names, "
                                            "or measure the watchlist on labelled lists (--eval).")
    p.add_argument("names", nargs="*", metavar="NAME", help="domain names (Unicode or punycode)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per name: name, domain, root_domain, score, matches, alert "
                        "(with --eval: the figures as one JSON object)")
    p.add_argument("--watchlist", metavar="FILE",
                   help="watchlist YAML (default: WATCHLIST_FILE, else the bundled list)")
    p.add_argument("--alert-min-score", type=int, metavar="N",
                   help="alert threshold (default: ALERT_MIN_SCORE; 0: alerts off)")
    p.add_argument("--eval", metavar="DIR",
                   help="a folder with phish.txt and benign_*.txt (one name per line): print per benign set "
                        "the ROC AUC, the share of phishing caught at <= 1%% of it flagged, and what the "
                        "alert threshold flags and catches")
    return p


def main(argv: list[str]) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if not args.names and not args.eval:
        p.error("give names to score, or --eval DIR")
    path, threshold = _configured()
    if args.watchlist is not None:
        path = args.watchlist
    if args.alert_min_score is not None:
        if args.alert_min_score < 0:
            p.error("--alert-min-score: expected 0 or more")
        threshold = args.alert_min_score
    try:
        wl = load_watchlist(path or None)
        if args.eval:
            return _evaluate(args.eval, wl, threshold, args.json)
    except (WatchlistError, evaluation.EvalError) as e:
        print(f"scout score: {e}", file=sys.stderr)
        return 2
    _print_scores(args.names, wl, threshold, args.json)
    return 0


def _print_scores(names: list[str], wl, threshold: int, as_json: bool) -> None:
    out = sys.stdout
    for raw in names:
        domain = normalise(raw)
        root = root_of(domain)
        score, matches = score_domain(domain, root, wl)
        alert = threshold > 0 and score >= threshold
        if as_json:
            out.write(json.dumps({"name": raw, "domain": domain, "root_domain": root, "score": score,
                                  "matches": matches, "alert": alert}, ensure_ascii=False) + "\n")
        else:
            shown = raw if raw == domain else f"{raw} ({domain})"
            detail = ", ".join(_describe(m) for m in matches) or "-"
            out.write(f"{score:5d}{' !' if alert else '  '} {shown}  {detail}\n")
    out.flush()


def _evaluate(folder: str, wl, threshold: int, as_json: bool) -> int:
    names = evaluation.read_eval_dir(folder)
    result = evaluation.evaluate(names, evaluation.watchlist_scorer(wl), threshold or None)
    if as_json:
        print(json.dumps({"watchlist": wl.source, **result}, sort_keys=True))
        return 0
    for line in evaluation.format_report(result, f"{wl.source} on {folder}"):
        print(line)
    if not threshold:
        print("alerts are off (ALERT_MIN_SCORE=0)")
    print("ref: phishing_catcher's figures from bench/data/watchlist-eval/README.md (full lists, IPs included); "
          "cv: threshold picked on one half of the names, measured on the other")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))

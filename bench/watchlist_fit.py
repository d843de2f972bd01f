"""Fit the bundled watchlist's rule weights by logistic regression on the dev evaluation sets.

    python -m bench.watchlist_fit [--folder bench/data/watchlist-eval] [--watchlist FILE]

A development tool, not run by `python -m bench` (it needs scikit-learn: `pip install scikit-learn`, not part of the test requirements). It
scores every name with the watchlist, turns each name's matches into one number per rule (how many times
the rule's current points it got; TLD and keyword points in tens), fits a logistic regression (phishing
against all benign sets, classes balanced, L2) and prints, per rule, the points that would give
``SCALE`` points per unit of log-odds: the weights to write into the watchlist YAML by hand. Also prints
the fit's cross-validated figures (two folds split by name) beside the current weights', so a fit is
only taken when it beats them on names it did not see.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from scout.names import normalise_domain, root_domain
from scout.watchlist import evaluation as ev
from scout.watchlist import load_watchlist, score_domain

SCALE = 10
FOLDER = Path(__file__).resolve().parent / "data" / "watchlist-eval"
FAMILY = {"tld": 10, "keyword": 10, "regex": 10}   # per-item points: one feature per ten points


def rule_key(m: dict) -> str:
    return f"keyword_{m['where']}" if m["rule"] == "keyword" else m["rule"]


def features(names: dict[str, list[str]], wl) -> tuple[list[str], list[dict], list[int], list[str]]:
    rows, labels, which = [], [], []
    for key, items in names.items():
        for raw in items:
            name, _ = normalise_domain(raw)
            f: dict[str, float] = defaultdict(float)
            if name:
                for m in score_domain(name, root_domain(name), wl)[1]:
                    f[rule_key(m)] += m["score"] / unit(wl, m)
            rows.append(f)
            labels.append(int(key == "phish"))
            which.append(raw)
    columns = sorted({k for r in rows for k in r})
    return columns, rows, labels, which


def unit(wl, m: dict) -> float:
    """The points one 'unit' of a rule is worth in the watchlist being fitted."""
    if m["rule"] in FAMILY or m["rule"] == "watched_root":
        return 10
    if m["rule"].startswith("brand_"):
        return {"brand_lookalike": wl.brand_rules["lookalike"], "brand_in_subdomain": wl.brand_rules["in_subdomain"],
                "brand_in_label": wl.brand_rules["in_label"], "brand_other_root": wl.brand_rules["other_root"]}[m["rule"]]
    if m["rule"] in ("hosting_platform", "private_suffix"):
        return wl.platforms["hosting" if m["rule"] == "hosting_platform" else "private_suffix"] or 1
    return wl.structure[m["rule"]]["score"] or 1


def main(argv=None) -> int:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser(prog="python -m bench.watchlist_fit", description=__doc__.split("\n")[0])
    ap.add_argument("--folder", default=str(FOLDER))
    ap.add_argument("--watchlist", default=None)
    ap.add_argument("--C", type=float, default=1.0, help="inverse L2 strength")
    args = ap.parse_args(argv)
    names = ev.read_eval_dir(args.folder)
    wl = load_watchlist(args.watchlist)
    columns, rows, y, raw = features(names, wl)
    X = np.array([[r.get(c, 0.0) for c in columns] for r in rows])
    y = np.array(y)
    current = np.array([score_of(n, wl) for n in raw])
    folds = np.array([ev.fold_of(n) for n in raw])
    sets = np.array([k for k, items in names.items() for _ in items])
    for f in (0, 1):
        tr, te = folds != f, folds == f
        clf = LogisticRegression(C=args.C, max_iter=5000, class_weight="balanced").fit(X[tr], y[tr])
        for b in (k for k in names if k != "phish"):
            m = te & ((sets == "phish") | (sets == b))
            p = clf.decision_function(X[m])
            print(f"fold {f} {b:<13} AUC fit {roc_auc_score(y[m], p):.3f}  current {roc_auc_score(y[m], current[m]):.3f}"
                  f"  caught@1% fit {ev.caught_at(list(p[y[m] == 1]), list(p[y[m] == 0]))[0]:.1%}"
                  f"  current {ev.caught_at(list(current[m][y[m] == 1]), list(current[m][y[m] == 0]))[0]:.1%}")
    clf = LogisticRegression(C=args.C, max_iter=5000, class_weight="balanced").fit(X, y)
    print(f"\nsuggested points ({SCALE} per unit of log-odds; families as a multiplier of their items' points):")
    for c, w in sorted(zip(columns, clf.coef_[0]), key=lambda t: -t[1]):
        if c in ("tld", "keyword_root", "keyword_subdomain", "regex"):
            print(f"  {c:<20} x{w * SCALE / 10:.2f}")
        else:
            print(f"  {c:<20} {round(w * SCALE):+d}")
    return 0


def score_of(raw: str, wl) -> int:
    name, _ = normalise_domain(raw)
    return score_domain(name, root_domain(name), wl)[0] if name else 0


if __name__ == "__main__":
    raise SystemExit(main())

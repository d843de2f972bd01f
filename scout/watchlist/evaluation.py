"""Measuring a scorer on labelled names: ROC AUC, phishing caught at a benign false-positive budget, and
what an alert threshold flags. Pure functions plus the reading of an evaluation folder.

An evaluation folder holds ``phish.txt`` and one or more ``benign_*.txt`` (one name per line; blank lines
and ``#`` comments skipped), as ``bench/data/watchlist-eval/`` does. Each benign set is measured on its
own: registered domains and real hostnames stress a scorer differently.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable, Iterable

from scout.names import normalise_domain, root_domain

from .scoring import score_domain

# phishing_catcher (the classic CT phishing scorer: keywords, suspicious TLDs, entropy, Levenshtein to
# brands; name only) measured by the eval lists' authors on the full lists (bench/data/watchlist-eval/README.md).
REFERENCE = {"benign_tail": {"auc": 0.84, "caught_at_1pct": 0.159},
             "benign_top": {"auc": None, "caught_at_1pct": 0.050},
             "benign_hosts": {"auc": 0.54, "caught_at_1pct": 0.012}}
# The default alert's false-positive limits: registered domains and real hostnames.
FPR_LIMITS = {"benign_hosts": 0.02}
FPR_LIMIT_DEFAULT = 0.01


class EvalError(ValueError):
    """An evaluation folder that cannot be used (the message says why)."""


def read_names(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def read_eval_dir(folder: str | Path) -> dict[str, list[str]]:
    """{"phish": [...], "benign_x": [...], ...}; EvalError when phish.txt or every benign_*.txt is missing
    or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalError(f"{folder}: not a folder")
    phish = folder / "phish.txt"
    if not phish.is_file():
        raise EvalError(f"{folder}: no phish.txt (one phishing name per line)")
    sets = {"phish": read_names(phish)}
    for p in sorted(folder.glob("benign_*.txt")):
        sets[p.stem] = read_names(p)
    if not sets["phish"] or len(sets) < 2 or not all(sets.values()):
        empty = [k for k, v in sets.items() if not v]
        raise EvalError(f"{folder}: needs a non-empty phish.txt and at least one non-empty benign_*.txt"
                        + (f" (empty: {', '.join(empty)})" if empty else ""))
    return sets


def auc(pos: list[float], neg: list[float]) -> float:
    """ROC AUC: the chance that a random positive scores above a random negative (ties count half)."""
    ranked = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum, i, n = 0.0, 0, len(ranked)
    while i < n:
        j = i
        while j < n and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += (i + 1 + j) / 2 * sum(lab for _v, lab in ranked[i:j])
        i = j
    p = len(pos)
    return (rank_sum - p * (p + 1) / 2) / (p * len(neg))


def flagged(scores: list[float], threshold: float) -> float:
    """Share of `scores` at or above `threshold`."""
    return sum(1 for v in scores if v >= threshold) / len(scores) if scores else 0.0


def threshold_at(neg: list[float], max_fpr: float) -> float:
    """The lowest threshold (a score that occurs, or one above them all) flagging at most `max_fpr` of `neg`."""
    top = max(neg, default=0) + 1
    for t in sorted(set(neg)) + [top]:
        if flagged(neg, t) <= max_fpr:
            return t
    return top


def caught_at(pos: list[float], neg: list[float], max_fpr: float = 0.01) -> tuple[float, float]:
    """(share of `pos` caught, threshold) at the lowest threshold flagging at most `max_fpr` of `neg`.
    Thresholds fall between the negatives' scores, so no tie is split."""
    t = threshold_at(neg, max_fpr)
    return flagged(pos, t), t


def fold_of(name: str, k: int = 2) -> int:
    """A fixed split by name (like the held-out halves): the same name always lands in the same fold."""
    return zlib.crc32(name.encode("utf-8", "replace")) % k


def cross_validated(names: dict[str, list[str]], scores: dict[str, list[float]], benign: str,
                    max_fpr: float, k: int = 2) -> dict:
    """Pick the threshold on k-1 folds, measure it on the fold left out: the caught and flagged shares
    averaged over the folds. What to expect from a threshold chosen on one half and used on the other."""
    caught, fpr = [], []
    for f in range(k):
        def part(key, inside):
            return [s for n, s in zip(names[key], scores[key]) if (fold_of(n, k) == f) == inside]
        t = threshold_at(part(benign, False), max_fpr)
        caught.append(flagged(part("phish", True), t))
        fpr.append(flagged(part(benign, True), t))
    return {"caught": sum(caught) / k, "flagged": sum(fpr) / k}


def scorable(names: dict[str, list[str]]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """The lists without what the pipeline never scores (IP addresses, malformed names: it skips and
    counts them before scoring), and how many were left out of each."""
    kept = {k: [n for n in v if normalise_domain(n)[0]] for k, v in names.items()}
    return kept, {k: len(names[k]) - len(kept[k]) for k in names}


def evaluate(names: dict[str, list[str]], score: Callable[[str], float], alert_threshold: float | None,
             max_fpr: float = 0.01) -> dict:
    """Every figure for one scorer: per benign set AUC, caught at <= max_fpr flagged (in sample and
    cross-validated), and what `alert_threshold` flags and catches. Entries the pipeline would not score
    are left out (counted in `skipped`); `auc_all` is the AUC with them in, as misses scoring 0."""
    names, skipped = scorable(names)
    scores = {k: [score(n) for n in v] for k, v in names.items()}
    pos = scores["phish"]
    out = {"phish": len(pos), "skipped": skipped, "phish_scored": sum(1 for v in pos if v > 0) / len(pos),
           "sets": {}}
    for key in (k for k in names if k != "phish"):
        neg = scores[key]
        c, t = caught_at(pos, neg, max_fpr)
        row = {"names": len(neg), "auc": auc(pos, neg), "caught_at_fpr": c, "threshold": t,
               "auc_all": auc(pos + [0] * skipped["phish"], neg),
               "cv": cross_validated(names, scores, key, max_fpr)}
        if alert_threshold is not None:
            row["alert_flagged"] = flagged(neg, alert_threshold)
            row["alert_limit"] = FPR_LIMITS.get(key, FPR_LIMIT_DEFAULT)
        out["sets"][key] = row
    if alert_threshold is not None:
        out["alert_threshold"] = alert_threshold
        out["alert_caught"] = flagged(pos, alert_threshold)
    return out


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def format_report(result: dict, title: str, baseline: dict | None = None) -> Iterable[str]:
    """Lines of a table: per benign set this scorer's figures, the baseline's (when measured in the same
    run) and phishing_catcher's reference figures."""
    skipped = ", ".join(f"{k} {v}" for k, v in result["skipped"].items() if v) or "none"
    yield (f"{title}: {result['phish']} phishing names, {_pct(result['phish_scored'])} score above 0 "
           f"(left out, as the pipeline never scores them: {skipped})")
    yield (f"{'benign set':<14} {'names':>6} {'AUC':>6} {'(all)':>6} {'caught@1%':>10} {'(cv)':>7} {'thr':>5}"
           + (f" {'alert flags':>11} {'limit':>6}" if "alert_threshold" in result else "")
           + (f" {'base AUC':>9} {'base@1%':>8} {'ratio':>6}" if baseline else "")
           + f" {'ref AUC':>8} {'ref@1%':>7}")
    for key, r in result["sets"].items():
        line = (f"{key:<14} {r['names']:>6} {r['auc']:>6.3f} {r['auc_all']:>6.3f} {_pct(r['caught_at_fpr']):>10} "
                f"{_pct(r['cv']['caught']):>7} {r['threshold']:>5g}")
        if "alert_threshold" in result:
            line += f" {_pct(r['alert_flagged']):>11} {_pct(r['alert_limit']):>6}"
        if baseline:
            b = baseline["sets"][key]
            ratio = r["caught_at_fpr"] / b["caught_at_fpr"] if b["caught_at_fpr"] else None
            line += f" {b['auc']:>9.3f} {_pct(b['caught_at_fpr']):>8} {'-' if ratio is None else f'{ratio:.1f}x':>6}"
        ref = REFERENCE.get(key, {})
        ref_auc = ref.get("auc")
        line += f" {'-' if ref_auc is None else f'{ref_auc:.2f}':>8} {_pct(ref.get('caught_at_1pct')):>7}"
        yield line
    if "alert_threshold" in result:
        yield (f"alert at score >= {result['alert_threshold']:g}: catches {_pct(result['alert_caught'])} "
               f"of phishing")


def watchlist_scorer(watchlist) -> Callable[[str], int]:
    """name as listed -> its score, normalised and split exactly as the pipeline does (scout.names).
    Names the pipeline would skip (IP addresses, bad characters) score 0, as nothing would alert on them."""
    def score(raw: str) -> int:
        name, _reason = normalise_domain(raw)
        return score_domain(name, root_domain(name), watchlist)[0] if name else 0  # scorable() left those out
    return score

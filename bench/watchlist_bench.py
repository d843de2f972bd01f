"""Watchlist benchmark: how well the bundled watchlist finds phishing, what each signal adds, how fast.

    python -m bench --only watchlist

Reads the dev evaluation lists from bench/data/watchlist-eval/ (phish.txt, benign_*.txt). In the same run
it measures the baseline: a phishing_catcher-style scorer written from its public description
(bench/phishing_catcher.py). Figures per benign set: ROC AUC, the share of phishing caught at <= 1 % of
that set flagged (in sample and cross-validated over two halves split by name), what the default alert
threshold (ALERT_MIN_SCORE) flags and catches, each beside the baseline's and phishing_catcher's reference
figures from the lists' README. Then an ablation (each signal switched off in turn) and the scoring speed
(names per CPU-second of one core) against the baseline's.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Callable

from bench import phishing_catcher
from scout.config import Settings
from scout.names import normalise_domain, root_domain
from scout.watchlist import evaluation as ev
from scout.watchlist import rules
from scout.watchlist.scoring import score_domain

FOLDER = Path(__file__).resolve().parent / "data" / "watchlist-eval"
BASELINE_ALERT = 65   # phishing_catcher's own lowest threshold ("suspicious")


def _zero(*path: str) -> Callable[[dict], None]:
    def off(data: dict) -> None:
        d = data
        for k in path[:-1]:
            d = d.setdefault(k, {})
        d[path[-1]] = 0 if path[-1] != "subdomain_percent" else 100
    return off


def _no_brands(data: dict) -> None:
    data["brands"] = {}


def _no_allow_lists(data: dict) -> None:
    data["brands"] = {name: {"domains": [f"{name}.invalid"], **({k: v for k, v in spec.items() if k != "domains"}
                                                                if isinstance(spec, dict) else {})}
                      for name, spec in data["brands"].items()}


def _brand_rule(rule: str) -> Callable[[dict], None]:
    return _zero("brand_rules", rule)


def _structure(rule: str) -> Callable[[dict], None]:
    return _zero("structure", rule, "score")


ABLATIONS = {
    "suspicious TLDs": lambda d: d.update(tlds={}),
    "keywords": lambda d: d.update(keywords={}),
    "keyword context (subdomain 75 %)": _zero("keyword_rules", "subdomain_percent"),
    "regexes": lambda d: d.update(regexes=[]),
    "brands (all brand rules)": _no_brands,
    "  brand_lookalike": _brand_rule("lookalike"),
    "  brand_in_subdomain": _brand_rule("in_subdomain"),
    "  brand_in_label": _brand_rule("in_label"),
    "  brand_other_root": _brand_rule("other_root"),
    "  brands' own domains as allow lists": _no_allow_lists,
    "hosting platforms": _zero("platforms", "hosting"),
    "private suffixes (PSL)": _zero("platforms", "private_suffix"),
    "endpoint discount": lambda d: d["platforms"].update(infrastructure_percent=100),
    "fake_tld": _structure("fake_tld"),
    "com_prefix": _structure("com_prefix"),
    "digits": _structure("digits"),
    "label_length": _structure("label_length"),
    "root_hyphens": _structure("root_hyphens"),
    "random_subdomain": _structure("random_subdomain"),
}


def _scorer_for(data: dict):
    return ev.watchlist_scorer(rules._parse(rules.DEFAULT_WATCHLIST_PATH, data))


def ablation(names: dict, full: dict, threshold: int) -> dict:
    """Each signal off in turn: the figures it costs (negative: the signal helps)."""
    base = rules._load_yaml(rules.DEFAULT_WATCHLIST_PATH)
    out = {}
    for label, switch_off in ABLATIONS.items():
        data = copy.deepcopy(base)
        switch_off(data)
        r = ev.evaluate(names, _scorer_for(data), threshold)
        out[label] = {k: {"auc": round(full["sets"][k]["auc"] - v["auc"], 3),
                          "caught": round(full["sets"][k]["caught_at_fpr"] - v["caught_at_fpr"], 3),
                          "alert_flagged": round(v["alert_flagged"], 4)}
                      for k, v in r["sets"].items()}
        out[label]["alert_caught"] = round(full["alert_caught"] - r["alert_caught"], 3)
    return out


def speed(names: dict, rounds: int = 3) -> dict:
    """Names scored per CPU-second, best of `rounds`: cold (a fresh watchlist, every token new) and warm
    (results not cached, token caches full, as in a stream where names share their parts); the baseline
    scoring the same names."""
    items = []
    for v in names.values():
        for raw in v:
            d, _ = normalise_domain(raw)
            if d:
                items.append((d, root_domain(d)))
    cold = warm = base = 0.0
    for _ in range(rounds):
        wl = rules.load_watchlist(None)
        t = time.process_time()
        for d, r in items:
            score_domain(d, r, wl)
        cold = max(cold, len(items) / (time.process_time() - t))
        wl.result_cache.clear()
        t = time.process_time()
        for d, r in items:
            score_domain(d, r, wl)
        warm = max(warm, len(items) / (time.process_time() - t))
        t = time.process_time()
        for d, _r in items:
            phishing_catcher.score(d)
        base = max(base, len(items) / (time.process_time() - t))
    return {"watchlist_names_per_s_cold": round(cold), "watchlist_names_per_s_warm": round(warm),
            "watchlist_baseline_names_per_s": round(base), "watchlist_speed_ratio": round(cold / base, 3)}


def bench_watchlist(folder: Path = FOLDER) -> dict:
    names = ev.read_eval_dir(folder)
    threshold = Settings().alert_min_score
    ours = ev.evaluate(names, ev.watchlist_scorer(rules.load_watchlist(None)), threshold)
    base = ev.evaluate(names, phishing_catcher.score, BASELINE_ALERT)
    report = list(ev.format_report(base, f"baseline (phishing_catcher-style, alert at {BASELINE_ALERT})"))
    report += list(ev.format_report(ours, "watchlist (bundled)", base))
    fig = {"watchlist": _rounded(ours), "watchlist_baseline": _rounded(base),
           "watchlist_ablation": ablation(names, ours, threshold), "watchlist_report": report}
    for key, row in ours["sets"].items():
        b = base["sets"][key]["caught_at_fpr"]
        fig[f"watchlist_caught_ratio_{key}"] = round(row["caught_at_fpr"] / b, 2) if b else None
    fig.update(speed(names))
    return fig


def _rounded(result: dict) -> dict:
    def r(v):
        if isinstance(v, float):
            return round(v, 4)
        if isinstance(v, dict):
            return {k: r(x) for k, x in v.items()}
        return v
    return r(result)


def print_ablation(ablation_figures: dict) -> None:
    sets = [k for k in next(iter(ablation_figures.values())) if k != "alert_caught"]
    print("watchlist ablation: what each signal adds (AUC and caught@1% lost when it is off; "
          "alert: caught lost, and flagged without it)")
    print(f"  {'signal':<38}" + "".join(f" {k[7:] + ' AUC':>11} {'@1%':>7}" for k in sets)
          + f" {'alert':>7} " + " ".join(f"{k[7:] + ' fl':>9}" for k in sets))
    for label, row in ablation_figures.items():
        print(f"  {label:<38}" + "".join(f" {row[k]['auc']:>+11.3f} {100 * row[k]['caught']:>+6.1f}%" for k in sets)
              + f" {100 * row['alert_caught']:>+6.1f}% " + " ".join(f"{100 * row[k]['alert_flagged']:>8.1f}%"
                                                                      for k in sets))

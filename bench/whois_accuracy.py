"""WHOIS parsing on real answers: how often scout.whois.text agrees with what the registries said, by TLD
family, against python-whois's parser alone measured in the same run; and how fast each parses.

Reads the corpus from the repository (tests/data/whois-corpus/, comparison rules in bench/whois_corpus.py).
Needs only the production install (python-whois, the baseline, is a runtime dependency). asyncwhois's offline parser is
measured too when it happens to be installed (it is not a dependency).

    python -m bench --only whois_accuracy      # or: python -m bench.whois_accuracy
"""
from __future__ import annotations

import importlib.util
import json
import logging
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.whois_corpus import load_corpus, score  # noqa: E402


def _first(value):
    if isinstance(value, (list, tuple)):
        return next((v for v in value if v), None)
    return value


def _iso(value) -> str | None:
    """A third-party parser's date (datetime, string or a list of them) -> ISO 8601."""
    from datetime import datetime, timezone

    from scout.whois.text.dates import iso, parse_date

    value = _first(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return iso(parse_date(str(value)))


def fields_from(registrar, created, updated, expires, nameservers) -> dict:
    """scout's fields from a third-party parser's values (strings, datetimes, lists of either)."""
    hosts: list[str] = []
    for v in [nameservers] if isinstance(nameservers, str) else nameservers or []:
        host = str(v).strip().split()[0].lower().rstrip(".") if str(v).strip() else ""
        if host and host not in hosts:
            hosts.append(host)
    reg = _first(registrar)
    return {"registrar": str(reg).strip() if reg else None, "created": _iso(created), "updated": _iso(updated),
            "expires": _iso(expires), "nameservers": hosts}


def python_whois(name: str, text: str) -> tuple[dict, str]:
    """The baseline: python-whois's parser alone (`WhoisEntry.load`), its own not-found detection."""
    from whois.exceptions import WhoisDomainNotFoundError
    from whois.parser import WhoisEntry

    try:
        e = WhoisEntry.load(name, text)
    except WhoisDomainNotFoundError:
        return {}, "not_found"
    except Exception:  # noqa: BLE001 - it raises on dates it cannot read: nothing parsed
        return {}, "no_data"
    return fields_from(e.get("registrar"), e.get("creation_date"), e.get("updated_date"),
                       e.get("expiration_date"), e.get("name_servers")), "ok"


def asyncwhois_parser(name: str, text: str) -> tuple[dict, str]:
    """asyncwhois's offline TLD parsers (only when installed)."""
    from asyncwhois.errors import NotFoundError
    from asyncwhois.parse_tld import DomainParser

    try:
        r = DomainParser().parse(text, name.rsplit(".", 1)[-1])
    except NotFoundError:
        return {}, "not_found"
    except Exception:  # noqa: BLE001
        return {}, "no_data"
    return fields_from(r.get("registrar"), r.get("created"), r.get("updated"), r.get("expires"),
                       r.get("name_servers")), "ok"


def _timed(samples, parse) -> tuple[dict, list[float]]:
    per: list[float] = []

    def run(name, text):
        t = time.perf_counter()
        try:
            return parse(name, text)
        finally:
            per.append(time.perf_counter() - t)

    return score(samples, run), per


def _speed(per: list[float]) -> dict:
    return {"per_s": round(len(per) / sum(per), 1) if per else None,
            "median_us": round(statistics.median(per) * 1e6) if per else None,
            "max_ms": round(max(per) * 1e3, 1) if per else None}


def bench_whois_accuracy(rounds: int = 3) -> dict:
    from scout.whois.text import classify

    logging.getLogger("scout").setLevel(logging.ERROR)
    samples = load_corpus()
    ours, per = _timed(samples, classify)
    for _ in range(rounds - 1):   # more rounds for a steadier speed figure (same results)
        per += _timed(samples, classify)[1]
    base, base_per = _timed(samples, python_whois)
    out = {"whois_accuracy_samples": len(samples), "whois_accuracy": _summary(ours),
           "whois_accuracy_baseline": _summary(base),
           "whois_parse_per_s": _speed(per)["per_s"], "whois_parse_baseline_per_s": _speed(base_per)["per_s"],
           "whois_parse_speed": {"scout": _speed(per), "python_whois": _speed(base_per)}}
    out["whois_parse_ratio"] = round(out["whois_parse_per_s"] / out["whois_parse_baseline_per_s"], 1)
    out["whois_field_pct"] = ours["total"]["field_pct"]
    out["whois_field_baseline_pct"] = base["total"]["field_pct"]
    out["whois_notfound_pct"] = ours["total"]["notfound_pct"]
    out["whois_notfound_baseline_pct"] = base["total"]["notfound_pct"]
    if importlib.util.find_spec("asyncwhois") is not None:
        out["whois_accuracy_asyncwhois"] = _summary(score(samples, asyncwhois_parser))
    return out


def _summary(result: dict) -> dict:
    keep = ("fields", "fields_ok", "field_pct", "by_field", "notfound", "notfound_ok", "notfound_pct",
            "throttled", "throttled_ok", "throttled_pct", "registered", "registered_as_notfound",
            "registered_as_throttled")
    out = {"total": {k: result["total"][k] for k in keep}}
    out["families"] = {f: {k: v[k] for k in keep} for f, v in result["families"].items()}
    return out


def _cell(ours: dict, base: dict, key: str, n: str) -> str:
    if not ours[n]:
        return f"{'-':>15}"
    return f"{ours[key]:>6.1f} ({base[key]:>5.1f})"


def print_accuracy(fig: dict) -> None:
    ours, base = fig["whois_accuracy"], fig["whois_accuracy_baseline"]
    print(f"WHOIS parsing on {fig['whois_accuracy_samples']} real answers, scout (python-whois alone):")
    print(f"  {'TLD family':<30} {'answers':>7} {'fields agree %':>15} {'no match %':>15} {'throttled %':>15}"
          f" {'reg->nf/thr':>11}")
    rows = list(ours["families"].items()) + [("overall", ours["total"])]
    for fam, o in rows:
        b = base["total"] if fam == "overall" else base["families"][fam]
        n = o["registered"] + o["notfound"] + o["throttled"]
        print(f"  {fam:<30} {n:>7} {_cell(o, b, 'field_pct', 'fields')} {_cell(o, b, 'notfound_pct', 'notfound')} "
              f"{_cell(o, b, 'throttled_pct', 'throttled')} {o['registered_as_notfound']:>5}/"
              f"{o['registered_as_throttled']:<5}")
    t = ours["total"]["by_field"]
    bt = base["total"]["by_field"]
    print("  by field: " + ", ".join(f"{k} {a}/{n} ({bt[k][0]}/{n})" for k, (a, n) in t.items()))
    if "whois_accuracy_asyncwhois" in fig:
        a = fig["whois_accuracy_asyncwhois"]["total"]
        print(f"  asyncwhois (installed): fields {a['field_pct']} %, no match {a['notfound_pct']} %, "
              f"throttled {a['throttled_pct']} %")
    s, b = fig["whois_parse_speed"]["scout"], fig["whois_parse_speed"]["python_whois"]
    print(f"  answers parsed per second: {s['per_s']:,.0f} vs python-whois {b['per_s']:,.0f} "
          f"({fig['whois_parse_ratio']}x); median {s['median_us']} us vs {b['median_us']} us, "
          f"slowest {s['max_ms']} ms vs {b['max_ms']} ms")


def main() -> int:
    fig = bench_whois_accuracy()
    print_accuracy(fig)
    print(json.dumps(fig, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`scout query`'s formats: json (an array of full documents), jsonl, csv (a header row, one row per
domain, the queryable fields), table (the same fields, aligned for a terminal)."""
from __future__ import annotations

import csv
import io
import json

FORMATS = ("table", "json", "jsonl", "csv")
# (header, how to read it from a document)
CSV_COLUMNS = (
    ("domain", lambda d: d.get("domain")),
    ("root_domain", lambda d: d.get("root_domain")),
    ("first_seen", lambda d: d.get("first_seen")),
    ("last_seen", lambda d: d.get("last_seen")),
    ("seen_count", lambda d: d.get("seen_count")),
    ("score", lambda d: d.get("score")),
    ("addresses", lambda d: " ".join((d.get("a_records") or []) + (d.get("aaaa_records") or []))),
    ("registrar", lambda d: _whois(d).get("registrar")),
    ("whois_created", lambda d: _whois(d).get("created")),
    ("whois_status", lambda d: _whois(d).get("status")),
    ("nameservers", lambda d: " ".join(_whois(d).get("nameservers") or [])),
    ("cert_issuer", lambda d: (d.get("certificate") or {}).get("issuer")),
)
TABLE_COLUMNS = ("domain", "first_seen", "score", "addresses", "registrar", "whois_status")
TABLE_WIDTH = 48   # a cell longer than this is cut with …


def _whois(doc: dict) -> dict:
    parsed = doc.get("domain_whois_parsed")
    return parsed if isinstance(parsed, dict) else {}


def _cell(value) -> str:
    return "" if value is None else str(value)


def render(docs: list[dict], fmt: str) -> str:
    """The documents in format `fmt` (one of FORMATS), ending with a newline unless empty."""
    if fmt == "json":
        return json.dumps(docs, ensure_ascii=False, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([name for name, _ in CSV_COLUMNS])
        for d in docs:
            w.writerow([_cell(get(d)) for _, get in CSV_COLUMNS])
        return buf.getvalue()
    if fmt == "table":
        return _table(docs)
    raise ValueError(f"unknown format {fmt!r}: {', '.join(FORMATS)}")


def _table(docs: list[dict]) -> str:
    getters = dict(CSV_COLUMNS)
    rows = [list(TABLE_COLUMNS)]
    for d in docs:
        cells = [_cell(getters[c](d)) for c in TABLE_COLUMNS]
        rows.append([c if len(c) <= TABLE_WIDTH else c[:TABLE_WIDTH - 1] + "…" for c in cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n({len(docs)} domain{'s' if len(docs) != 1 else ''})\n"

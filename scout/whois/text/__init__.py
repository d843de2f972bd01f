r"""Port-43 WHOIS answers of any registry -> registration fields and what the answer says.

    classify(name, text)          -> (fields, "ok" | "not_found" | "rate_limited" | "no_data")
    parse_whois_text(name, text)  -> (fields, not_found)        (what scout.whois.domain uses)
    is_rate_limited(text), rate_wait(text)

`fields` is {"registrar", "created", "updated", "expires" (ISO 8601 UTC or None), "nameservers",
"statuses" (lists)}. Pure functions, linear in the size of the answer, no network.

How (measured on tests/data/whois-corpus/, see bench/whois_accuracy.py and bench/RESULTS.md):
lines.py reads every layout into (key, value) entries, fields.py maps registries' key names to the
five fields and prefers the block naming the domain, dates.py reads their date layouts, answers.py
recognises "no match" and "slow down" wordings.

Why not python-whois's parser (still a dependency: the benchmark's baseline): on the corpus it agrees on
79.5 % of fields against 98.5 % here, recognises 26 % of "no match" answers and no throttle, and some of
its TLD classes backtrack catastrophically (`(?:^\s*.*\s+)*` in its .jp class: 47-86 s on one 1.2 KB
JPRS answer; `[\w\W]+X` in its .hk class: 2-3 s on 3 KB), which would hold a lookup worker. Filling the
fields our reading leaves empty from it changed nothing on the corpus.
"""
from __future__ import annotations

import logging

from .answers import MAX_RATE_WAIT, NOT_FOUND, RATE, rate_wait, says_not_found, says_rate_limited
from .dates import declares_month_first
from .fields import PHRASE_KEYS, extract
from .lines import parse_entries

__all__ = ["classify", "parse_whois_text", "is_rate_limited", "rate_wait", "NOT_FOUND", "RATE",
           "MAX_RATE_WAIT"]

log = logging.getLogger(__name__)

_STATUS_KEYS = ("domain status", "status", "registration status", "domain state")


def _statuses(entries) -> list[str]:
    out: list[str] = []
    for e in entries:
        if e.key in _STATUS_KEYS and e.value:
            for part in e.value.replace(",", " ").split()[:1]:
                if part not in out:
                    out.append(part)
    return out[:32]


# Real answers are a few KB (the longest in the corpus: 12 KB); reading stops here so that a hostile
# server's megabyte of junk costs a worker well under a second (the raw text is still kept whole).
MAX_READ = 256 * 1024


def fields_of(name: str, text: str) -> dict:
    """The registration fields an answer carries (empty values when it carries none)."""
    text = text[:MAX_READ]
    entries = parse_entries(text, PHRASE_KEYS)
    fields = extract(entries, name, declares_month_first(text))
    fields["statuses"] = _statuses(entries)
    return fields


def has_registration(fields: dict) -> bool:
    """Data only a registered domain's answer has (a "no match" answer may still echo the name, a date
    of the database or a registrar's name in its notice)."""
    return bool(fields.get("created") or fields.get("expires") or fields.get("nameservers"))


def _some_data(fields: dict) -> bool:
    return bool(fields.get("registrar") or fields.get("updated") or fields.get("statuses"))


def classify(name: str, text: str) -> tuple[dict, str]:
    """(fields, status) of one answer: registration data wins over any wording; without it, "slow down"
    wins over "no match" (AFNIC says both when it limits us)."""
    fields = fields_of(name, text)
    if has_registration(fields):
        return fields, "ok"
    if says_rate_limited(text[:MAX_READ]):
        return fields, "rate_limited"
    if says_not_found(text[:MAX_READ]):
        return fields, "not_found"
    return fields, "ok" if _some_data(fields) else "no_data"


def parse_whois_text(name: str, text: str) -> tuple[dict, bool]:
    """(fields, not_found) of one answer. A fault of the reader on some unforeseen text is logged and
    gives no fields (the lookup then says "error: no registration data in answer"), never a failed task."""
    try:
        fields, status = classify(name, text)
    except Exception:  # noqa: BLE001 - registry text is untrusted; the raw answer is kept either way
        log.exception("could not read the WHOIS answer for %s", name)
        return {}, False
    return fields, status == "not_found"


def is_rate_limited(text: str) -> bool:
    """A "slow down" answer (and no registration data in it)."""
    return says_rate_limited(text[:MAX_READ]) and not has_registration(fields_of("", text))

"""Dates as registries print them -> aware datetimes -> ISO 8601 (their offset kept, UTC otherwise).

Registries print local times in a dozen layouts: ISO 8601, `2008.03.16 01:08:04` (.pl),
`07.11.2008 22:02:11` and `dd/mm/yyyy` (Europe: day first), `2000-Sep-18.` (.tr), `1999. 07. 28.` (.kr),
`2005/05/30` (.jp), `19961206 #24302` (.br), `20121216134104` (.ua), `2003年03月17日`, `Tue Jun 21 23:59:59
GMT 2011`, ... A numeric date with the year last is read day first (as Europe and most registries that
use it print it), unless its second number cannot be a month or the answer declares `mm/dd/yyyy`.
An explicit offset (`+03:00`, `(UTC+8)`, `GMT+0:00`, `JST`) is kept; otherwise the time is taken as UTC.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_MONTHS.update({"sept": 9, "june": 6, "july": 7, "janv": 1, "févr": 2, "mars": 3, "avr": 4, "mai": 5, "juin": 6,
                "juil": 7, "août": 8, "déc": 12, "ene": 1, "abr": 4, "ago": 8, "dic": 12, "okt": 10, "dez": 12})
_TIME = r"(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?)?"
# "+03:00", "-0800" after a time, or "UTC+8" / "GMT+0:00" anywhere after the date
_ZONE = re.compile(r"(?:UTC|GMT)\s*([+-])(\d{1,2})(?::?(\d{2}))?\b|(?<=\d)\s?([+-])(\d{2}):?(\d{2})\b"
                   r"|\b(JST|KST|MSK|CET|CEST|EET|EEST|AEST|AEDT|NZST|NZDT|HKT|SGT|PST|PDT|EST|EDT)\b")
_NAMED = {"JST": 9, "KST": 9, "MSK": 3, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "AEST": 10, "AEDT": 11,
          "NZST": 12, "NZDT": 13, "HKT": 8, "SGT": 8, "PST": -8, "PDT": -7, "EST": -5, "EDT": -4}
_YMD = re.compile(r"(?<!\d)(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})(?!\d)(?:\s*[.日])?" + _TIME)
_DMY = re.compile(r"(?<!\d)(\d{1,2})[-./](\d{1,2})[-./](\d{4})(?!\d)" + _TIME)
_YMON = re.compile(r"(?<!\d)(\d{4})-([A-Za-z]{3,4})-(\d{1,2})(?!\d)" + _TIME)
_DMON = re.compile(r"(?<![\d\w])(\d{1,2})(?:st|nd|rd|th)?[-\s./]*([^\W\d_]{3,5})[a-zé]*\.?[-\s./,]*(\d{4})(?!\d)" + _TIME)
_MOND = re.compile(r"\b([A-Za-z]{3,4})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(?:(\d{1,2}):(\d{2}):(\d{2})\s+"
                   r"(?:[A-Z]{3,4}\s+)?)?(\d{4})\b")
_DMONYY = re.compile(r"(?<![\d\w])(\d{1,2})-([A-Za-z]{3})-(\d{2})(?![\d-])" + _TIME)   # "29-APR-05"
_MONY = re.compile(r"\b([A-Za-z]{3})[a-z]*[-\s]+(\d{4})\b")   # "before Aug-1996": the first of the month
_COMPACT = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?:\s*(\d{2}):?(\d{2}):?(\d{2}))?(?!\d)")


def _zone(text: str) -> timezone:
    m = _ZONE.search(text)
    if not m:
        return timezone.utc
    if m.group(7):
        return timezone(timedelta(hours=_NAMED[m.group(7).upper()]))
    sign, hours, minutes = m.groups()[:3] if m.group(1) else m.groups()[3:6]
    try:
        off = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(off if sign == "+" else -off)
    except ValueError:
        return timezone.utc


def _build(y, mo, d, hh=None, mi=None, ss=None, tz=timezone.utc) -> datetime | None:
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=tz)
    except (TypeError, ValueError):
        return None
    return dt if dt.year >= 1900 else None


def _month(word: str) -> int | None:
    return _MONTHS.get(word.lower()[:4]) or _MONTHS.get(word.lower()[:3])


def parse_date(value: str, month_first: bool = False) -> datetime | None:
    """The first date in `value`, as an aware datetime; None when there is none."""
    s = value.strip()[:120]
    if not s or not re.search(r"\d", s):
        return None
    m = _YMD.search(s)
    if m:
        dt = _build(*m.groups()[:6], tz=_zone(s[m.end(3):]))
        if dt:
            return dt
    m = _YMON.search(s)
    if m and _month(m.group(2)):
        return _build(m.group(1), _month(m.group(2)), m.group(3), *m.groups()[3:6], tz=_zone(s[m.end(3):]))
    m = _DMY.search(s)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        day, mon = (b, a) if (month_first and a <= 12) or b > 12 else (a, b)
        return _build(m.group(3), mon, day, *m.groups()[3:6], tz=_zone(s[m.end(3):]))
    m = _DMON.search(s)
    if m and _month(m.group(2)):
        return _build(m.group(3), _month(m.group(2)), m.group(1), *m.groups()[3:6], tz=_zone(s[m.end(3):]))
    m = _MOND.search(s)
    if m and _month(m.group(1)):
        return _build(m.group(6), _month(m.group(1)), m.group(2), *m.groups()[2:5], tz=_zone(s[m.end(2):]))
    m = _COMPACT.search(s)
    if m:
        return _build(*m.groups(), tz=_zone(s[m.end():]))
    m = _DMONYY.search(s)
    if m and _month(m.group(2)):
        yy = int(m.group(3))
        return _build(yy + (2000 if yy < 70 else 1900), _month(m.group(2)), m.group(1), *m.groups()[3:6])
    m = _MONY.search(s)
    if m and _month(m.group(1)):
        return _build(m.group(2), _month(m.group(1)), 1)
    return None


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 keeping the registry's offset when it printed one (the day stays the day it printed),
    `Z` otherwise."""
    if dt is None:
        return None
    try:
        return dt.isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError):
        return None


_NUMERIC = re.compile(r"(?<![\d.])(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?!\d)")


def declares_month_first(text: str) -> bool:
    """An answer whose numeric dates are month first: it says so (`mm/dd/yyyy`), or one of its dates can
    only be read month first (`12/18/2001`) and none only day first. Freenom's registries (.tk .cf .ga
    .ml .gq) print `Domain registered: 12/18/2001`."""
    head = text[:65536]
    if re.search(r"\bmm[/.-]dd[/.-](?:yyyy|yy)\b", head, re.IGNORECASE):
        return True
    month_first = day_first = False
    for m in _NUMERIC.finditer(head):
        a, b = int(m.group(1)), int(m.group(2))
        month_first |= b > 12 >= a
        day_first |= a > 12 >= b
    return month_first and not day_first

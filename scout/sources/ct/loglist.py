"""Which CT logs exist: Chrome's v3 log list (`log_list.json`), the usable ones, and the CT_LOGS filter.

The list has `operators[]`, each with `logs[]` (RFC 6962: `url`) and `tiled_logs[]` (static-ct-api:
`submission_url` for writers, `monitoring_url` for readers like us). Every log has `description`, `key`
(base64 SPKI), `log_id` (base64 SHA-256 of the key) and a `state` object with a single key such as
`usable`, `qualified`, `readonly`, `retired`, `rejected` or `pending`.

The list can come from https://, http://, file:// or a plain path; when it cannot be read the bundled
snapshot (scout/data/ct_log_list.json) is used so the reader still starts.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from scout.sources.ct import Fetcher
from scout.sources.ct.malformed import CTError

log = logging.getLogger("scout.ct")

BUNDLED_LOG_LIST = Path(__file__).resolve().parents[2] / "data" / "ct_log_list.json"
USABLE_STATES = frozenset({"usable", "qualified"})
RFC6962 = "rfc6962"
TILED = "tiled"
MAX_LIST_BYTES = 8 << 20


class LogListError(CTError):
    """The log list could not be read or is not a v3 log list."""


@dataclass(frozen=True)
class CTLog:
    name: str           # the list's description, e.g. "Google 'Argon2026h2' log"
    operator: str
    url: str            # base URL without trailing slash (RFC 6962 url / tiled monitoring_url)
    type: str           # RFC6962 or TILED
    state: str          # "usable", "retired", ... ("" when the list gives none)
    log_id: str = ""
    key: str = ""
    submission_url: str = ""

    @property
    def key_id(self) -> str:
        """Identity used for state and worker bookkeeping."""
        return f"{self.type}:{self.url}"


def _state(entry: dict) -> str:
    st = entry.get("state")
    if isinstance(st, dict) and len(st) >= 1:
        return next(iter(st))
    return ""


def _base(url: str) -> str:
    return url.strip().rstrip("/")


def parse_log_list(data: bytes | str | dict) -> list[CTLog]:
    """Every log in a v3 list (any state). Raises LogListError on a document that is not one."""
    if not isinstance(data, dict):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise LogListError(f"log list is not JSON: {e}") from None
    operators = data.get("operators") if isinstance(data, dict) else None
    if not isinstance(operators, list):
        raise LogListError("log list has no operators[] (not a v3 list)")
    out: list[CTLog] = []
    for op in operators:
        if not isinstance(op, dict):
            continue
        op_name = str(op.get("name") or "")
        for kind, items, url_key in ((RFC6962, op.get("logs"), "url"), (TILED, op.get("tiled_logs"), "monitoring_url")):
            for e in items if isinstance(items, list) else ():
                if not isinstance(e, dict) or not isinstance(e.get(url_key), str) or not e[url_key].strip():
                    continue
                url = _base(e[url_key])
                if not url.startswith(("http://", "https://")):
                    continue
                out.append(CTLog(name=str(e.get("description") or url), operator=op_name, url=url, type=kind,
                                 state=_state(e), log_id=str(e.get("log_id") or ""), key=str(e.get("key") or ""),
                                 submission_url=str(e.get("submission_url") or "")))
    return out


def usable(logs: list[CTLog]) -> list[CTLog]:
    """Logs that accept new certificates (usable/qualified): the ones worth following."""
    return [lg for lg in logs if lg.state in USABLE_STATES]


def parse_filter(text: str) -> list[str]:
    return [p.strip().lower() for p in (text or "").split(",") if p.strip()]


def apply_filter(logs: list[CTLog], ct_logs: str) -> list[CTLog]:
    """CT_LOGS: comma-separated substrings matched (case-insensitively) against operator, name and URL.
    Empty keeps every log."""
    terms = parse_filter(ct_logs)
    if not terms:
        return list(logs)
    return [lg for lg in logs
            if any(t in lg.operator.lower() or t in lg.name.lower() or t in lg.url.lower() for t in terms)]


def read_source(source: str, fetcher: Fetcher | None = None) -> bytes:
    """The bytes of a log list at an http(s) URL, a file:// URL or a plain path."""
    src = (source or "").strip()
    if src.startswith(("http://", "https://")):
        f = fetcher or Fetcher(max_bytes=MAX_LIST_BYTES)
        try:
            return f.get(src)
        finally:
            if fetcher is None:
                f.close()
    path = Path(unquote(urlparse(src).path)) if src.startswith("file://") else Path(src)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_LIST_BYTES + 1)
    except OSError as e:
        raise LogListError(f"cannot read log list {src!r}: {e}") from None
    if len(data) > MAX_LIST_BYTES:
        raise LogListError(f"log list {src!r} is larger than {MAX_LIST_BYTES} bytes")
    return data


def load(source: str, fetcher: Fetcher | None = None, fallback: bool = True) -> tuple[list[CTLog], str]:
    """(all logs, where they came from). Falls back to the bundled snapshot when `source` fails."""
    try:
        return parse_log_list(read_source(source, fetcher)), source
    except CTError as e:
        if not fallback:
            raise
        log.warning("CT log list %s unavailable (%s); using the bundled snapshot", source, e)
    return parse_log_list(BUNDLED_LOG_LIST.read_bytes()), str(BUNDLED_LOG_LIST)


def select(logs: list[CTLog], ct_logs: str = "") -> list[CTLog]:
    """Usable logs of both kinds, after the CT_LOGS filter, without duplicates."""
    seen, out = set(), []
    for lg in apply_filter(usable(logs), ct_logs):
        if lg.key_id not in seen:
            seen.add(lg.key_id)
            out.append(lg)
    return out

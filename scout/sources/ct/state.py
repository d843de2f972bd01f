"""CT_STATE_FILE: where each log's reading stopped, what was read, and what had to be skipped.

Version 2 (written since issue 18), one object per log under `logs`, keyed by the log's key id:

    {"version": 2, "saved_at": 1764590000.0,
     "logs": {"<key id>": {"name": "...", "url": "...", "next_index": 2000,
                           "ranges": [[1000, 1500], [1600, 2000]],
                           "gaps": [{"start": 1500, "end": 1600, "entries": 100, "reason": "...", "at": ...}]}}}

- `next_index`: the next entry to deliver (everything before it was delivered or is a gap);
- `ranges`: half-open [start, end) ranges of entries processed, from where we began following the log:
  the complement of `gaps` within [first, next_index). Readers need only the first start, but the list
  lets a person (or a tool) see coverage at a glance;
- `gaps`: entries skipped (a log that pruned them, an entry not served after CT_SKIP_AFTER tries).

Version 1 (`{"version": 1, "logs": {key: {"next_index": N, "name": ...}}}`) is still read: coverage then
starts at next_index and there are no gaps. Writes are atomic (tmp file, fsync, rename).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from scout.sources.ct.health import Gap

log = logging.getLogger("scout.ct")

STATE_VERSION = 2


@dataclass
class LogState:
    next_index: int
    first_index: int | None = None
    name: str = ""
    url: str = ""
    gaps: list = field(default_factory=list)      # Gap

    def ranges(self) -> list[list[int]]:
        """Processed ranges: [first_index, next_index) minus the gaps."""
        start = self.next_index if self.first_index is None else self.first_index
        out = []
        for g in sorted(self.gaps, key=lambda g: g.start):
            if g.end <= start or g.start >= self.next_index:
                continue
            if g.start > start:
                out.append([start, g.start])
            start = max(start, g.end)
        if start < self.next_index:
            out.append([start, self.next_index])
        return out

    def as_dict(self) -> dict:
        return {"name": self.name, "url": self.url, "next_index": self.next_index, "ranges": self.ranges(),
                "gaps": [g.as_dict() for g in self.gaps]}


def _index(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _log_state(v) -> LogState | None:
    if not isinstance(v, dict) or _index(v.get("next_index")) is None:
        return None
    st = LogState(v["next_index"], name=str(v.get("name") or ""), url=str(v.get("url") or ""))
    ranges = v.get("ranges")
    if isinstance(ranges, list) and ranges and isinstance(ranges[0], list) and ranges[0]:
        first = _index(ranges[0][0])
        st.first_index = first if first is not None and first <= st.next_index else None
    gaps = v.get("gaps")
    st.gaps = [g for g in (Gap.from_dict(d) for d in (gaps if isinstance(gaps, list) else [])) if g is not None]
    return st


def load_states(path: str) -> dict[str, LogState]:
    """{log key: LogState} from a v1 or v2 state file; {} when absent or unreadable (logged)."""
    if not path:
        return {}
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("CT state file %s unreadable (%s); starting from each log's tip", path, e)
        return {}
    if not isinstance(doc, dict) or doc.get("version", 1) not in (1, 2):
        log.warning("CT state file %s has an unknown format; starting from each log's tip", path)
        return {}
    out = {}
    for key, v in (doc.get("logs") or {}).items() if isinstance(doc.get("logs"), dict) else ():
        st = _log_state(v)
        if st is not None:
            out[key] = st
    return out


def save_states(path: str, states: dict[str, LogState]) -> None:
    """Write the state file atomically: a crash leaves either the old file or the new one, never half."""
    doc = {"version": STATE_VERSION, "saved_at": round(time.time(), 3),
           "logs": {k: st.as_dict() for k, st in sorted(states.items())}}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

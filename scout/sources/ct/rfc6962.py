"""RFC 6962 logs: `GET <url>/ct/v1/get-sth` and `GET <url>/ct/v1/get-entries?start=A&end=B`.

Servers cap how many entries one get-entries returns (often 32..1024) and may return fewer than asked:
the caller loops from the first index it did not get. Signatures on tree heads are not checked: scout
watches for names, it does not audit logs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from scout.sources.ct import Fetcher
from scout.sources.ct.malformed import MalformedResponse

DEFAULT_BATCH = 256


@dataclass(frozen=True)
class RawEntry:
    index: int
    leaf_input: str     # base64, as served
    extra_data: str


def _json(body: bytes, what: str) -> dict:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedResponse(f"{what} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise MalformedResponse(f"{what} is not a JSON object")
    return doc


def parse_sth(body: bytes) -> int:
    """get-sth body -> tree_size."""
    size = _json(body, "get-sth").get("tree_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise MalformedResponse(f"get-sth has no valid tree_size: {size!r}")
    return size


def parse_entries(body: bytes, start: int, max_count: int) -> list[RawEntry]:
    """get-entries body -> RawEntry list numbered from `start`. Items lacking the two strings still take
    their index (with empty strings) so the decoder can count them as malformed instead of shifting the
    numbering of every entry after them."""
    items = _json(body, "get-entries").get("entries")
    if not isinstance(items, list):
        raise MalformedResponse("get-entries has no entries[]")
    if len(items) > max_count:
        items = items[:max_count]       # a server returning more than asked: keep what we asked for
    out = []
    for i, item in enumerate(items):
        leaf = item.get("leaf_input") if isinstance(item, dict) else None
        extra = item.get("extra_data") if isinstance(item, dict) else None
        out.append(RawEntry(start + i, leaf if isinstance(leaf, str) else "", extra if isinstance(extra, str) else ""))
    return out


class RFC6962Client:
    def __init__(self, base_url: str, fetcher: Fetcher, batch: int = DEFAULT_BATCH) -> None:
        self.base_url = base_url.rstrip("/")
        self.fetcher = fetcher
        self.batch = batch

    def tree_size(self) -> int:
        return parse_sth(self.fetcher.get(f"{self.base_url}/ct/v1/get-sth"))

    def get_entries(self, start: int, end: int) -> list[RawEntry]:
        """Entries start..min(end, start+batch-1), possibly fewer. Raises MalformedResponse if none."""
        end = min(end, start + self.batch - 1)
        body = self.fetcher.get(f"{self.base_url}/ct/v1/get-entries", params={"start": start, "end": end})
        entries = parse_entries(body, start, end - start + 1)
        if not entries:
            raise MalformedResponse(f"get-entries {start}..{end} returned no entries")
        return entries

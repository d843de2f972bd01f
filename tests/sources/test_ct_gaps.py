"""CT_STATE_FILE v2 (issue 18): a restart resumes without gaps; entries a log does not serve (pruned, or
one it cannot serve) are skipped after CT_SKIP_AFTER tries and reported as gaps, in status(), in the
state file (kept across restarts) and in `scout stats`; a v1 state file is still read."""
from __future__ import annotations

import json
import time

from scout.config import Settings
from scout.ops.stats import collect_stats, format_stats
from scout.producer.producer import Producer
from scout.sources.ct.reader import first_readable
from scout.sources.ct.state import load_states
from scout.store import MemoryStore, set_store
from tests.servers.ct_log import RFC6962Server, StaticCTServer, log_list
from tests.sources.test_ct import Harness, pki, servers, write_list  # noqa: F401 (fixtures)


class PrunedLog(RFC6962Server):
    """Serves no entry below `pruned` (400, as a log answering for a range it no longer has), and answers
    500 for any range that includes an index in `broken`."""

    pruned = 0
    broken: set = set()

    def route(self, path, query):
        if path.endswith("/get-entries") and "start" in query and "end" in query:
            start, end = int(query["start"][0]), int(query["end"][0])
            if start < self.pruned:
                return 400, b'{"error":"pruned"}', "application/json", {}
            if any(start <= b <= end for b in self.broken):
                return 500, b'{"error":"internal"}', "application/json", {}
        return super().route(path, query)


class PrunedTiles(StaticCTServer):
    """Tiles below `pruned_tiles` are gone (404)."""

    pruned_tiles = 0

    def _tile(self, rest):
        n = rest.split(".p/")[0]
        if "/" not in n and n.isdigit() and int(n) < self.pruned_tiles:
            return None
        return super()._tile(rest)


def items(pki, prefix: str, n: int):
    return [pki.item(f"{prefix}{i}.example.test", [f"{prefix}{i}.example.test"]) for i in range(n)]


def indexes(frames, kind: str = "rfc6962") -> list[int]:
    return [f["data"]["cert_index"] for f in frames if f["data"]["source"]["type"] == kind]


def test_restart_resumes_without_gaps_and_reads_v1_state(tmp_path, servers, pki):
    srv = servers(RFC6962Server, items(pki, "r", 60), max_batch=7)
    lst = write_list(tmp_path, log_list(rfc6962=[("R", "R log", srv.url)]))
    state = str(tmp_path / "ct-state.json")
    with Harness(lst, state_file=state, start_at=0) as h:
        h.wait_for(60, timeout=60)
        assert h.wait_until(lambda: h.src.status()[0]["position"] == 60, 60)
    srv.append(items(pki, "down", 25))                       # logged while we were down
    with Harness(lst, state_file=state, start_at=None) as h2:
        h2.wait_for(25, timeout=60)
        assert h2.wait_until(lambda: h2.src.status()[0]["position"] == 85, 60)
        assert h2.src.status()[0]["gaps"] == []
    assert sorted(indexes(h.frames)) == list(range(60)) and sorted(indexes(h2.frames)) == list(range(60, 85))
    doc = json.loads(open(state).read())
    (key, saved), = doc["logs"].items()
    assert doc["version"] == 2 and saved["next_index"] == 85 and saved["ranges"] == [[0, 85]] and saved["gaps"] == []
    assert saved["name"] == "R log" and saved["url"].rstrip("/") == srv.url.rstrip("/")
    # a state file written before ranges existed (v1) is read: it resumes at its next_index
    open(state, "w").write(json.dumps({"version": 1, "saved_at": 1.0, "logs": {key: {"next_index": 80, "name": "R log"}}}))
    with Harness(lst, state_file=state, start_at=None) as h3:
        h3.wait_for(5, timeout=60)
        assert h3.wait_until(lambda: h3.src.status()[0]["position"] == 85, 60)
    assert sorted(indexes(h3.frames)) == [80, 81, 82, 83, 84]
    assert load_states(state)[key].ranges() == [[80, 85]]


def test_pruned_and_unservable_entries_become_reported_gaps(tmp_path, servers, pki):
    srv = servers(PrunedLog, items(pki, "p", 100), max_batch=16)
    srv.pruned, srv.broken = 40, {57}
    tsrv = servers(PrunedTiles, items(pki, "t", 3 * 256 + 10))
    tsrv.pruned_tiles = 2
    lst = write_list(tmp_path, log_list(rfc6962=[("P", "Pruned log", srv.url)], tiled=[("T", "Tiled log", tsrv.url)]))
    state = str(tmp_path / "ct-state.json")
    with Harness(lst, state_file=state, start_at=0, skip_after=3) as h:
        h.wait_for(59 + 266, timeout=120)
        assert h.wait_until(lambda: [s["position"] for s in h.src.status()] == [100, 3 * 256 + 10], 60)
        status = {s["name"]: s for s in h.src.status()}
    assert sorted(indexes(h.frames)) == [i for i in range(40, 100) if i != 57]
    assert sorted(indexes(h.frames, "tiled")) == list(range(512, 3 * 256 + 10))
    gaps = [(g["start"], g["end"]) for g in status["Pruned log"]["gaps"]]
    assert gaps == [(0, 40), (57, 58)]
    assert "400" in status["Pruned log"]["gaps"][0]["reason"] and "500" in status["Pruned log"]["gaps"][1]["reason"]
    assert [(g["start"], g["end"], g["entries"]) for g in status["Tiled log"]["gaps"]] == [(0, 512, 512)]
    assert h.counters.get("ct_gaps") == 3 and h.counters.get("ct_gap_entries") == 40 + 1 + 512
    states = {st.name: st for st in load_states(state).values()}
    assert states["Pruned log"].ranges() == [[40, 57], [58, 100]]
    assert states["Tiled log"].ranges() == [[512, 778]]
    # the gaps survive a restart: still reported, and nothing is read twice
    with Harness(lst, state_file=state, start_at=None, skip_after=3) as h2:
        assert h2.wait_until(lambda: len(h2.src.status()) == 2 and all(s["tree_size"] for s in h2.src.status()), 60)
        time.sleep(0.3)
        status2 = {s["name"]: s for s in h2.src.status()}
        store = MemoryStore()
        set_store(store)
        try:
            p = Producer(Settings(), None, store)
            p.ct_status = h2.src.status
            p.publish_ct_status()
            stats = collect_stats(Settings())
        finally:
            set_store(None)
    assert h2.frames == []
    assert [(g["start"], g["end"]) for g in status2["Pruned log"]["gaps"]] == [(0, 40), (57, 58)]
    assert sorted((g["log"], g["start"], g["end"]) for g in stats["gaps"]) == [
        ("Pruned log", 0, 40), ("Pruned log", 57, 58), ("Tiled log", 0, 512)]
    text = format_stats(stats)
    assert "gap: Pruned log entries 0..39 (40) skipped" in text and "3 gaps" in text


def test_an_outage_of_every_entry_is_not_a_gap(tmp_path, servers, pki):
    srv = servers(PrunedLog, items(pki, "o", 20), max_batch=16)
    srv.pruned = 10 ** 9                                   # the head answers, no entry does: an outage
    lst = write_list(tmp_path, log_list(rfc6962=[("O", "Out log", srv.url)]))
    with Harness(lst, start_at=0, skip_after=2) as h:
        assert h.wait_until(lambda: (h.src.status() or [{}])[0].get("errors", 0) >= 6, 60)   # [] before it starts
        assert h.src.status()[0]["gaps"] == [] and h.src.status()[0]["position"] == 0
        srv.pruned = 0                                      # back: everything is read
        h.wait_for(20, timeout=60)
        assert h.wait_until(lambda: h.src.status()[0]["position"] == 20, 60)
    assert sorted(indexes(h.frames)) == list(range(20)) and h.counters.get("ct_gaps") == 0


def test_first_readable_binary_search():
    calls = []

    def readable_from(k):
        def f(i):
            calls.append(i)
            return i >= k
        return f

    assert first_readable(0, 1000, readable_from(371)) == 371 and len(calls) <= 13
    assert first_readable(5, 10, readable_from(0)) == 5
    assert first_readable(5, 10, readable_from(10)) is None
    assert first_readable(5, 5, readable_from(0)) is None

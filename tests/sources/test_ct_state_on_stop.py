"""CT_STATE_FILE on stop: only what reached the producer's queue counts as read (issue 16). Frames still
in the reader's own buffer when the stop comes are read again by the next run, not skipped."""
from __future__ import annotations

import json
import queue
import threading

from scout.config import Settings
from scout.counters import Counters
from scout.sources.ct.reader import CTSource, load_state
from scout.sources.live import _waiting_put
from tests.servers.ct_log import RFC6962Server, log_list
from tests.sources.test_ct import FAST, Harness, pki, servers, write_list  # noqa: F401 - fixtures

TAKEN = 7          # the producer's queue holds this many frames; nobody reads it


def test_stop_saves_only_delivered_positions_and_restart_reads_the_rest(tmp_path, servers, pki):  # noqa: F811
    srv = servers(RFC6962Server, [pki.item(f"s{i}.example.test", [f"s{i}.example.test"]) for i in range(60)],
                  max_batch=20)
    lst = write_list(tmp_path, log_list(rfc6962=[("S", "S log", srv.url)]))
    state = str(tmp_path / "ct-state.json")
    frames: queue.Queue = queue.Queue(maxsize=TAKEN)
    stop = threading.Event()
    settings = Settings(ct_log_list_url=lst, ct_state_file=state)
    src = CTSource(settings, _waiting_put(frames, Counters(), stop), stop, Counters(), start_at=0,
                   buffer_size=10, **FAST)
    t = threading.Thread(target=src.run, daemon=True)
    t.start()
    # The producer's queue is full and the reader's own buffer fills up behind it.
    assert Harness.wait_until(None, lambda: frames.full() and src.frames.full(), 15)
    stop.set()
    t.join(15)
    assert not t.is_alive()
    taken = []
    while not frames.empty():
        taken.append(json.loads(frames.get_nowait())["data"]["cert_index"])
    assert taken == list(range(TAKEN))
    assert list(load_state(state).values()) == [TAKEN]     # not the position of the frames it dropped

    # The next run starts with the first frame the producer never got.
    with Harness(lst, state_file=state, start_at=None) as h:
        got = h.wait_for(60 - TAKEN)
    assert [f["data"]["cert_index"] for f in got] == list(range(TAKEN, 60))

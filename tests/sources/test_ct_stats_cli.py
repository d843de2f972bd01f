"""`scout produce` with SOURCE=ct publishes each log's status, and `scout stats --json` (another process)
shows it under ct_logs; the state file it leaves is v2 with the processed range (issue 18)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from tests.conftest import run_scout, scout_env, wait_for
from tests.servers.ct_log import RFC6962Server, log_list
from tests.sources.test_ct import pki, servers, write_list  # noqa: F401 (fixtures)


def test_scout_produce_publishes_ct_status_for_scout_stats(tmp_path, servers, pki, redis_url):
    srv = servers(RFC6962Server, [pki.item(f"s{i}.example.test", [f"s{i}.example.test"]) for i in range(5)])
    lst = write_list(tmp_path, log_list(rfc6962=[("Op", "Stats log", srv.url)]))
    state = tmp_path / "ct-state.json"
    env = scout_env(BROKER_URL=redis_url, SOURCE="ct", CT_LOG_LIST_URL=lst, CT_STATE_FILE=state,
                    OUTPUT_DIR=tmp_path / "out")
    producer = subprocess.Popen([sys.executable, "-m", "scout", "produce"], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict = {}

    def stats_show(position: int) -> bool:
        r = run_scout(["stats", "--json"], env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        seen.update(json.loads(r.stdout))
        logs = seen.get("ct_logs") or []
        at = bool(logs) and logs[0]["position"] == position and logs[0]["tree_size"] == position
        # the log status and the counters are pushed together but read by different threads: the
        # status can show an entry read before the counter push that counts it lands
        return at and seen.get("counters", {}).get("producer:ct_entries", 0) == position - 5

    try:
        wait_for(lambda: stats_show(5), timeout=90, interval=1, message="the log at its tip in scout stats")
        srv.append([pki.item(f"n{i}.example.test", [f"n{i}.example.test"]) for i in range(3)])
        wait_for(lambda: stats_show(8), timeout=90, interval=1, message="three new entries read")
    finally:
        producer.send_signal(signal.SIGTERM)
        out, err = producer.communicate(timeout=60)
    assert producer.returncode == 0, err[-3000:]
    lg = seen["ct_logs"][0]
    assert (lg["name"], lg["kind"], lg["behind"], lg["errors"], lg["gaps"]) == ("Stats log", "rfc6962", 0, 0, [])
    assert lg["last_success"] and lg["lag_seconds"] < 120 and not lg["lagging"] and seen["gaps"] == []
    assert seen["counters"].get("producer:ct_entries") == 3
    doc = json.loads(state.read_text())
    (saved,) = doc["logs"].values()
    assert doc["version"] == 2 and saved["next_index"] == 8 and saved["ranges"] == [[5, 8]]

"""Issue 16, bounded: `scout prune --older-than 30d` deletes the documents last seen before the cutoff
(by `last_seen`, not by file time), then the folders left empty; prune_files(dir, cutoff) is the same job
for other callers. Documents are written by the real save stage; the CLI runs in a subprocess.
"""
from __future__ import annotations

import json
import os
import threading
import time

from tests.conftest import read_documents, run_scout, scout_env, validate_documents

DAY = 86400.0


def save(out, names: list[str], seen: float, raw: bool = True) -> None:
    from scout.config import load_settings
    from scout.names import root_domain
    from scout.stages.save import save_items
    from scout.store import MemoryStore

    s = load_settings({"OUTPUT_DIR": str(out), "OUTPUT_RAW_WHOIS": "true" if raw else "false"}, None)
    items = [{"d": n, "r": root_domain(n), "seen": seen, "dns": {"a_records": ["192.0.2.1"]},
              "dw": {"raw": "Domain Name: X\n" * 50, "parsed": {"status": "ok", "registrar": "R"}},
              "iw": {"192.0.2.1": {"raw": "NetRange: 192.0.2.0 - 192.0.2.255\n" * 30, "info": {"status": "ok"}}}}
             for n in names]
    save_items(items, s, MemoryStore())


def test_prune_by_last_seen_then_empty_folders(tmp_path):
    from scout.config import load_settings
    from scout.stages.save import apply_whois_result
    from scout.store import MemoryStore

    out = tmp_path / "out"
    now = time.time()
    save(out, ["a.old-only.example", "b.old-only.example"], now - 40 * DAY)
    save(out, ["old.mixed.example"], now - 31 * DAY)
    save(out, ["new.mixed.example", "new.fresh.example"], now - 2 * DAY)
    save(out, ["late.landed.example"], now - 45 * DAY)
    # A WHOIS answer lands today for the 45-day-old document: its file is new, its last_seen is not.
    store = MemoryStore()
    store.add_members("pending:dw:landed.example", ["late.landed.example"], 3600)
    s = load_settings({"OUTPUT_DIR": str(out)}, None)
    assert apply_whois_result("domain", "landed.example", {"raw": "x", "parsed": {"status": "ok"}}, s, store) == 1
    (out / "alerts.jsonl").write_text("{}\n")                  # not a document folder: left alone

    env = scout_env(OUTPUT_DIR=out)
    dry = run_scout(["prune", "--older-than", "30d", "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert json.loads(dry.stdout.splitlines()[-1])["deleted"] == 4 and len(read_documents(out)) == 6

    r = run_scout(["prune", "--older-than", "30d"], env)
    assert r.returncode == 0, r.stderr[-2000:]
    counts = json.loads(r.stdout.splitlines()[-1])
    assert counts["deleted"] == 4 and counts["kept"] == 2 and counts["folders_removed"] == 2
    assert counts["bytes_freed"] > 4 * 2000
    docs = read_documents(out)
    assert set(docs) == {"new.mixed.example", "new.fresh.example"}
    validate_documents(docs)
    assert sorted(p.name for p in out.iterdir()) == ["alerts.jsonl", "fresh.example", "mixed.example"]

    bad = run_scout(["prune", "--older-than", "soon"], env)
    assert bad.returncode == 2 and "--older-than" in bad.stderr


def test_prune_waits_for_a_document_being_written(tmp_path):
    """A folder locked by a writer (the save stage's lock) is pruned only once the writer is done."""
    from scout.ops.prune import prune_files
    from scout.stages.files import locked_dir

    out = tmp_path / "out"
    save(out, ["w.busy.example"], time.time() - 60 * DAY)
    folder = out / "busy.example"
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def writer():
        with locked_dir(folder):
            held.set()
            release.wait(60)

    def pruner():
        prune_files(out, time.time() - 30 * DAY)
        done.set()

    threading.Thread(target=writer, daemon=True).start()
    assert held.wait(30)
    threading.Thread(target=pruner, daemon=True).start()
    assert not done.wait(1.0)                 # blocked on the lock
    assert (folder / "w.busy.example.json").exists()
    release.set()
    assert done.wait(60)
    assert not folder.exists()


def test_output_raw_whois_false_keeps_parsed_whois_only(tmp_path):
    from scout.config import load_settings
    from scout.stages.save import apply_whois_result
    from scout.store import MemoryStore

    out_raw, out_parsed = tmp_path / "raw", tmp_path / "parsed"
    save(out_raw, ["x.raw.example"], time.time())
    save(out_parsed, ["x.raw.example"], time.time(), raw=False)
    full, lean = read_documents(out_raw)["x.raw.example"], read_documents(out_parsed)["x.raw.example"]
    assert full["domain_whois"] and full["ip_whois"]["192.0.2.1"]
    assert lean["domain_whois"] == "" and lean["ip_whois"] == {"192.0.2.1": ""}
    assert lean["domain_whois_parsed"] == full["domain_whois_parsed"] and lean["ip_info"] == full["ip_info"]
    validate_documents({"x": lean})
    size = lambda d: sum(p.stat().st_size for p in d.rglob("*.json"))  # noqa: E731
    assert size(out_parsed) * 2 < size(out_raw)

    # A lookup landing later keeps the raw answer out too.
    store = MemoryStore()
    store.add_members("pending:dw:raw.example", ["x.raw.example"], 3600)
    s = load_settings({"OUTPUT_DIR": str(out_parsed), "OUTPUT_RAW_WHOIS": "false"}, None)
    apply_whois_result("domain", "raw.example", {"raw": "new raw", "parsed": {"status": "ok", "registrar": "Q"}},
                       s, store)
    lean = read_documents(out_parsed)["x.raw.example"]
    assert lean["domain_whois"] == "" and lean["domain_whois_parsed"]["registrar"] == "Q"
    assert not any(name.startswith(".tmp-") for name in os.listdir(out_parsed / "raw.example"))

"""`scout prune --older-than` deletes from the store (or counts with --dry-run); beside a `scout prune`
of the files (scout/ops/prune.py, registered first), the store is pruned after the files, and a setup
without a store only prunes the files."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

from scout import db
from scout.cli import main
from scout.cli import store as store_cli
from tests.support.stores import make_doc

NOW = datetime.now(timezone.utc)


def filled(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'scout.db'}"
    store = db.open_store(url)
    db.upsert_documents(store, [make_doc("old.example", "old.example", NOW - timedelta(days=40)),
                                make_doc("new.example", "new.example", NOW - timedelta(days=1))])
    store.close()
    return url


def test_prune_counts_then_deletes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORE_URL", filled(tmp_path))
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path / "out"))
    (tmp_path / "out").mkdir()
    assert main(["prune", "--older-than", "30d", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["store_would_delete"] == 1   # (with the files' counts after a merge)
    assert main(["prune", "--older-than", "30d"]) == 0
    assert json.loads(capsys.readouterr().out)["store_deleted"] == 1
    store = db.open_store(f"sqlite:///{tmp_path / 'scout.db'}")
    assert [d["domain"] for d in db.search(store, db.Filters())] == ["new.example"]
    store.close()


def test_beside_the_files_prune_both_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    calls = []
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    files = sub.add_parser("prune")
    files.add_argument("--older-than", required=True)
    files.add_argument("--dry-run", action="store_true")
    files.set_defaults(func=lambda args: calls.append(args.older_than) or print(json.dumps({"deleted": 3})))
    store_cli.add_commands(sub)
    args = parser.parse_args(["prune", "--older-than", "30d"])

    monkeypatch.setenv("STORE_URL", filled(tmp_path))
    assert (args.func(args) or 0) == 0 and calls == ["30d"]
    assert json.loads(capsys.readouterr().out) == {"deleted": 3, "store_deleted": 1}     # one JSON line

    monkeypatch.setenv("STORE_URL", "none")               # files only: the files' prune alone, no error
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path / "no-store-here"))
    assert (args.func(args) or 0) == 0 and calls == ["30d", "30d"]
    assert json.loads(capsys.readouterr().out) == {"deleted": 3}

"""`scout prune --older-than 30d`: documents whose domain was last seen before a cutoff leave OUTPUT_DIR,
then the root-domain folders left empty.

At live rate OUTPUT_DIR grows by millions of files a day (README, Operations: disk and inodes per million
domains); without pruning a file system runs out of inodes within weeks. A document's age is its
`last_seen` (the last certificate that named it), not its file time: a WHOIS answer landing later rewrites
the file without the domain being seen again. A file last written before the cutoff cannot have been seen
after it, so only newer files are read. Each folder is pruned under the same lock the save stage writes
under (scout.stages.files), so a document being written is never removed half-way.

`prune_files(dir, cutoff)` is the whole job for a folder of documents; other stores of documents (an SQL
table keyed by last_seen) prune with their own query and may call it for their file copies.
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from scout.stages.files import locked_dir, read_document

log = logging.getLogger(__name__)


def last_seen(doc: dict | None) -> float | None:
    """A document's `last_seen` as epoch seconds, or None when it has none that parses."""
    text = (doc or {}).get("last_seen")
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return None


def _prune_folder(folder: Path, cutoff: float, counts: Counter, dry_run: bool) -> None:
    with locked_dir(folder):
        with os.scandir(folder) as entries:
            files = [e for e in entries if e.is_file(follow_symlinks=False) and e.name.endswith(".json")]
        for entry in files:
            counts["scanned"] += 1
            st = entry.stat(follow_symlinks=False)
            if st.st_mtime < cutoff:
                seen = st.st_mtime           # written before the cutoff: seen before it too
            elif entry.name.startswith(".tmp-"):
                continue                     # a write in progress elsewhere
            else:
                seen = last_seen(read_document(Path(entry.path)))
                if seen is None:
                    counts["unreadable_kept"] += 1
                    continue
            if seen >= cutoff:
                counts["kept"] += 1
                continue
            if not dry_run:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
            counts["deleted"] += 1
            counts["bytes_freed"] += st.st_size
        if not dry_run and not any(os.scandir(folder)):
            os.rmdir(folder)                 # under its lock: a waiting writer re-creates it (files.locked_dir)
            counts["folders_removed"] += 1


def prune_files(output_dir: str | os.PathLike, cutoff: float, dry_run: bool = False) -> dict:
    """Delete the documents under `output_dir` last seen before `cutoff` (epoch seconds), then the
    folders left empty. -> counts: scanned, deleted, kept, bytes_freed, folders_removed, unreadable_kept."""
    base = Path(output_dir)
    counts: Counter = Counter()
    if not base.is_dir():
        return dict(counts)
    started = time.monotonic()
    with os.scandir(base) as entries:
        folders = [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    for folder in folders:
        try:
            _prune_folder(folder, cutoff, counts, dry_run)
        except OSError as exc:   # a folder we may not touch: say so, go on with the others
            counts["folders_failed"] += 1
            log.warning("prune: %s: %s", folder, exc)
    log.info("prune of %s: %s in %.1f s", base, dict(counts), time.monotonic() - started)
    return dict(counts)

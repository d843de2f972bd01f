"""Document files: one JSON document per domain, written atomically under a cross-process lock.

The lock is `flock` on the root domain's directory (no lock files to clean up): two writers of the
same root never interleave, and a reader never sees half a document because every write goes to a
temporary file in the same directory and is renamed over the old one. SAVE_FSYNC=true also forces
each file to disk before the rename (survives a power cut; costs a disk flush per document).
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from scout.stages import document


LOCK_TIMEOUT = 60.0     # s: a thread-pool worker ignores Celery's time limits, so the wait is bounded here


class LockTimeout(TimeoutError):
    """A document's directory stayed locked longer than LOCK_TIMEOUT (a writer hung on a stuck disk?)."""


def _flock(fd: int, directory: Path, timeout: float) -> None:
    """flock with a deadline: poll the non-blocking lock, backing off up to 50 ms."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(f"{directory}: locked by another writer for more than {timeout:.0f} s") from None
            time.sleep(pause)
            pause = min(0.05, pause * 2)


@contextmanager
def locked_dir(directory: Path, timeout: float = LOCK_TIMEOUT):
    """Hold `directory`'s lock (created when missing); LockTimeout after `timeout` s of waiting."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _flock(fd, directory, timeout)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def check_output_dir(output_dir: str) -> str | None:
    """Can documents be written under `output_dir`? Creates it when missing. -> None, or why not."""
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-check-", dir=output_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def read_document(path: Path) -> dict | None:
    try:
        with open(path, "rb") as f:
            doc = document.loads(f.read())
        return doc if isinstance(doc, dict) else None
    except FileNotFoundError:
        return None
    except ValueError:  # not ours or damaged by hand: replaced by the new write
        return None


def atomic_write(path: Path, data: bytes, fsync: bool = False) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def update_document(output_dir: str, root: str, domain: str,
                    change: Callable[[dict | None], dict | None], fsync: bool = False) -> Path | None:
    """Read-modify-write one document under its directory lock. `change(old)` returns the new
    document, or None to leave the file as it is."""
    path = document.document_path(output_dir, root, domain)
    with locked_dir(path.parent):
        new = change(read_document(path))
        if new is None:
            return None
        atomic_write(path, document.dumps(new), fsync=fsync)
    return path


def iter_documents(output_dir: str | os.PathLike):
    """Every document file under OUTPUT_DIR: (path, document), document None when the file is not a
    document (damaged, not JSON, no `domain`). Temporary files of writes in progress are left out."""
    for path in sorted(Path(output_dir).glob("*/*.json")):
        if path.name.startswith(".tmp-"):
            continue
        doc = read_document(path)
        if doc is not None and not (isinstance(doc.get("domain"), str) and doc["domain"]):
            doc = None
        yield path, doc

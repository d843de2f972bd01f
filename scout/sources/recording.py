"""JSONL recordings of certstream frames (one websocket frame per line, as `scout record` writes them):
what `scout run --source FILE`, `scout produce --source FILE` and the replay server read."""
from __future__ import annotations

import gzip
from typing import Iterator


def recording_lines(path) -> Iterator[bytes]:
    """The non-empty lines of a recording, verbatim (bytes without the line break). `.gz` files are
    decompressed."""
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield line


def read_recording(path) -> Iterator[str]:
    """Yield each non-empty line of a JSONL recording as str (one websocket frame per line).

    Decoded with errors="replace", so invalid UTF-8 and a truncated last line come out as strings that
    the frame parser counts as bad JSON rather than stopping the replay.
    """
    for line in recording_lines(path):
        yield line.decode("utf-8", errors="replace")

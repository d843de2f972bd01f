"""glibc's allocator under a threads pool: fewer malloc arenas, so a worker's memory stays flat.

glibc gives threads their own malloc arenas (up to eight per core). Memory Python hands to malloc (objects
over 512 bytes: the ~30 KB task messages, JSON documents) is freed into the arena of the thread that
allocated it and is seldom returned while other arenas grow: a `scout worker whois` (8 threads) fed
1.76 M new domains rose 131 -> 155 -> 166 MB (100 k, 540 k, 1.76 M) while its Python objects stayed
constant; with two arenas it stayed at 140-151 MB and gave memory back (bench/RESULTS.md, soak).

`limit_arenas()` is what `MALLOC_ARENA_MAX=2` does, for processes started without it (a plain `celery -A
scout worker` too): glibc reads that variable only at start, mallopt() works later for arenas not made
yet. A MALLOC_ARENA_MAX set by the operator wins; not glibc (musl, macOS): nothing to do.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8        # glibc's malloc.h
DEFAULT_ARENAS = 2


def limit_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """-> True when the limit was set here."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):   # not glibc
        return False

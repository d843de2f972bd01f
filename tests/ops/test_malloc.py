"""scout.ops.malloc: a threaded process that calls limit_arenas() keeps to two glibc malloc arenas
(counted by glibc's own malloc_stats); without it, busy threads get arenas of their own."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support.env import ROOT

PROGRAM = textwrap.dedent("""
    import ctypes, sys, threading
    from scout.ops.malloc import limit_arenas
    if sys.argv[1] == "limit":
        assert limit_arenas() is True
    start = threading.Barrier(16)

    def work():
        start.wait()                      # all at once: contention is what makes glibc add arenas
        for _ in range(3000):
            blobs = [bytearray(30_000) for _ in range(4)]   # message-sized: malloc, not pymalloc
            del blobs

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctypes.CDLL("libc.so.6").malloc_stats()   # "Arena N:" per arena, on stderr
""")


def arenas(mode: str, **env) -> int:
    r = subprocess.run([sys.executable, "-c", PROGRAM, mode], cwd=ROOT, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return sum(1 for line in r.stderr.splitlines() if line.startswith("Arena "))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_limit_arenas_keeps_a_threaded_process_to_two():
    assert arenas("limit") <= 2
    assert arenas("plain") > 2                       # the test can tell: threads do get arenas of their own


def test_an_operators_malloc_arena_max_wins():
    r = subprocess.run([sys.executable, "-c", "from scout.ops.malloc import limit_arenas; print(limit_arenas())"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "4"})
    assert r.stdout.strip() == "False", r.stderr

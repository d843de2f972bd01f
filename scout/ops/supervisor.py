"""`scout worker`'s supervisor: runs the Celery worker as a child process and starts it again when it
ends without being asked to: exit 75 (STALL_EXIT) when its watchdog (scout.ops.watchdog) saw it stop
consuming while its queue has messages (a Celery/kombu failure after a Redis restart, the process living
on and doing nothing), or any other exit, such as kombu's "Unrecoverable error" when Redis dies at the
wrong moment. A worker that keeps ending within `healthy_after` s of its start (CRASH_LOOP times in a
row) is given up on: `scout worker` exits with its code (compose's `restart:` or systemd takes over).
SIGTERM/SIGINT/SIGQUIT go to the worker (warm shutdown) and end the supervisor with it.

`scout worker` execs `python -m scout.ops.supervisor <the celery command line>`: the process keeps its
pid, and `ps` shows the Celery command it supervises (which carries no password: those travel in the
environment).
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("scout.ops.supervisor")   # also when run as __main__

STALL_EXIT = 75                     # EX_TEMPFAIL
SUPERVISED_ENV = "SCOUT_SUPERVISED"  # tells the watchdog that exiting gets it restarted
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
CRASH_LOOP = 5                      # quick ends in a row before giving up


def supervise(argv: list[str], env: dict | None = None, min_delay: float = 1.0, max_delay: float = 30.0,
              healthy_after: float = 60.0) -> int:
    """Run `argv` until it exits 0 or a signal asks to stop, starting it again otherwise. Restarts wait
    `min_delay`, doubling (up to `max_delay`) while the worker keeps ending within `healthy_after` s of
    its start; CRASH_LOOP such quick ends in a row (other than stalls) end the supervision.
    -> the worker's last exit code."""
    env = dict(os.environ if env is None else env)
    env[SUPERVISED_ENV] = "1"
    stopping = threading.Event()
    child: list[subprocess.Popen] = []

    def forward(signum, frame):
        stopping.set()
        if child and child[-1].poll() is None:
            child[-1].send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    delay, restarts, quick = min_delay, 0, 0
    try:
        while True:
            started = time.monotonic()
            child.append(subprocess.Popen(argv, env=env))
            rc = child[-1].wait()
            if stopping.is_set() or rc == 0:
                return rc
            lasted = time.monotonic() - started
            quick = 0 if lasted > healthy_after or rc == STALL_EXIT else quick + 1
            if quick >= CRASH_LOOP:
                log.error("worker ended %d times in a row within %.0f s of its start (last exit %d); "
                          "giving up", quick, healthy_after, rc)
                return rc
            restarts += 1
            delay = min_delay if lasted > healthy_after else min(max_delay, delay * 2)
            why = "stalled" if rc == STALL_EXIT else "ended"
            log.warning("worker %s (exit %d); starting it again in %.0f s (restart %d)", why, rc, delay, restarts)
            if stopping.wait(delay):
                return rc
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m scout.ops.supervisor COMMAND [ARGS...]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return supervise(argv)


if __name__ == "__main__":
    sys.exit(main())

"""`scout worker`'s supervisor: runs the Celery worker as a child process and starts it again when it
exits with STALL_EXIT (75): its watchdog (scout.ops.watchdog) saw it stop consuming while its queue has
messages, a Celery/kombu failure after a Redis restart in which the process lives on and does nothing.
Any other exit ends `scout worker` with the same code (compose's `restart:` or systemd takes over);
SIGTERM/SIGINT go to the worker (warm shutdown) and end the supervisor with it.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time

log = logging.getLogger(__name__)

STALL_EXIT = 75                     # EX_TEMPFAIL
SUPERVISED_ENV = "SCOUT_SUPERVISED"  # tells the watchdog that exiting gets it restarted
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def supervise(argv: list[str], env: dict | None = None, min_delay: float = 1.0, max_delay: float = 30.0,
              healthy_after: float = 60.0) -> int:
    """Run `argv` until it exits with anything but STALL_EXIT or a signal asks to stop. Restarts wait
    `min_delay`, doubling (up to `max_delay`) while the worker keeps stalling within `healthy_after` s of
    its start. -> the worker's last exit code."""
    env = dict(os.environ if env is None else env)
    env[SUPERVISED_ENV] = "1"
    stopping = threading.Event()
    child: list[subprocess.Popen] = []

    def forward(signum, frame):
        stopping.set()
        if child and child[-1].poll() is None:
            child[-1].send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    delay, restarts = min_delay, 0
    try:
        while True:
            started = time.monotonic()
            child.append(subprocess.Popen(argv, env=env))
            rc = child[-1].wait()
            if stopping.is_set() or rc != STALL_EXIT:
                return rc
            restarts += 1
            delay = min_delay if time.monotonic() - started > healthy_after else min(max_delay, delay * 2)
            log.warning("worker stalled and exited %d; starting it again in %.0f s (restart %d)",
                        rc, delay, restarts)
            if stopping.wait(delay):
                return rc
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

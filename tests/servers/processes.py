"""A group of real processes (celery workers and the like) started from full command lines, each in its
own process group with its output in a log file, waited for until they say they are ready, and stopped
with SIGTERM (SIGKILL after 20 s); and helpers to stop a process that reads a replay server. Used by
the tests and the benchmarks."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path


def stop_gracefully(proc: subprocess.Popen, timeout: float = 30):
    """SIGTERM (what a supervisor sends), then wait for the exit; -> (stdout, stderr) as communicate()."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=timeout)


@contextmanager
def reading(proc: subprocess.Popen, *servers):
    """`proc` reads a stream from `servers` (replay servers): however the block ends, the servers stop
    and a `proc` still running is killed. Servers the block starts later go into the yielded list."""
    started = list(servers)
    try:
        yield started
    finally:
        for server in started:
            server.stop()
        if proc.poll() is None:
            proc.kill()


class ProcessGroup:
    def __init__(self, env: dict, tmp: Path, cwd: Path | None = None, log_prefix: str = ""):
        self.env = env
        self.tmp = Path(tmp)
        self.cwd = Path(cwd) if cwd else self.tmp
        self.log_prefix = log_prefix
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []

    def start_argv(self, argv: list[str], label: str, wait_ready: bool = True, timeout: float = 60):
        """Start one process; with `wait_ready`, return once its log says " ready." (Celery's word)."""
        log = self.tmp / f"{self.log_prefix}{label}-{len(self.procs)}.log"
        proc = subprocess.Popen(argv, env=self.env, cwd=str(self.cwd), stdout=open(log, "wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((label, proc, log))
        deadline = time.time() + timeout
        while wait_ready and time.time() < deadline:
            if b" ready." in log.read_bytes():
                return proc
            if proc.poll() is not None:
                raise RuntimeError(f"{label} exited:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        if wait_ready:
            raise RuntimeError(f"{label} did not become ready:\n{log.read_text(errors='replace')[-3000:]}")
        return proc

    def pids(self) -> list[int]:
        return [p.pid for _, p, _ in self.procs]

    def logs(self) -> str:
        return "\n".join(f"--- {label}\n{log.read_text(errors='replace')[-4000:]}" for label, _, log in self.procs)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
        for _, proc, _ in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs = []

"""`scout canary` and the producer's periodic canary (CANARY_INTERVAL): send a synthetic domain through
the real queues and workers (scout.stages.canary answers it without network) and time it.

A canary is published like any batch (through the in-flight ledger, so one the broker loses is sent
again) and is done when the save worker has recorded it in the shared store. It tests the queues and
the workers, not the DNS resolver or the WHOIS servers (those have their own counters).
"""
from __future__ import annotations

import logging
import threading
import time

from scout.stages import canary
from scout.stages.chain import publish_chain

log = logging.getLogger(__name__)


def run_canary(settings, store, timeout: float, stop: threading.Event | None = None,
               poll: float = 0.1) -> dict:
    """Send one canary and wait for it up to `timeout` seconds. -> a report: ok, domain, seconds,
    latency per stage (queue wait included), and when it failed the last stage it passed."""
    item = canary.new_item()
    name, sent = item["d"], item["seen"]
    report: dict = {"domain": name, "ok": False, "timeout": timeout}
    try:
        publish_chain([item], settings, store)
    except Exception as exc:  # noqa: BLE001 - the broker is away: a failed canary, not a crash
        report.update(error=f"publish failed: {type(exc).__name__}: {exc}", seconds=round(time.time() - sent, 3))
        return report
    deadline = time.monotonic() + timeout
    times: dict = {}
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        try:
            times = canary.read(store, name) or times
        except Exception as exc:  # noqa: BLE001 - the store blinked: keep waiting until the deadline
            log.debug("canary: store unavailable: %s", exc)
        if "save" in times:
            break
        time.sleep(poll)
    report["seconds"] = round(time.time() - sent, 3)
    report["latency"] = canary.latency(times)
    report["ok"] = "save" in times
    if not report["ok"]:
        reached = [s for s in canary.STAGES if s in times]
        report["passed"] = reached
        report["error"] = (f"not saved within {timeout:g}s: "
                           + (f"stopped after {reached[-1]}" if reached else "no stage picked it up"))
    try:
        store.set_json(LAST, {**report, "at": round(time.time(), 3)}, LAST_TTL)   # for `scout stats`
    except Exception:  # noqa: BLE001 - the report is the result; the store may be what is broken
        log.debug("canary: could not keep the last report", exc_info=True)
    return report


LAST = canary.KEY + "last"
LAST_TTL = 7 * 86400.0


def last_canary(store) -> dict | None:
    """The last canary's report (`scout canary` or CANARY_INTERVAL), with `at`: when it ended."""
    try:
        return store.get_json(LAST)
    except Exception:  # noqa: BLE001
        return None


def format_canary(report: dict, now: float | None = None) -> str:
    ago = f"{(time.time() if now is None else now) - report.get('at', 0):.0f}s ago"
    if report.get("ok"):
        stages = "  ".join(f"{k}={v:.3f}s" for k, v in (report.get("latency") or {}).items())
        return f"canary:   ok {ago}  {stages}"
    return f"canary:   FAILED {ago}: {report.get('error')}"


class CanaryLoop:
    """CANARY_INTERVAL: one canary every interval (each waits at most the interval, 10 s at least, and
    60 s at most), in a thread of the producer; its last result is exported as metrics (state())."""

    def __init__(self, settings, store, interval: float):
        self.s, self.store, self.interval = settings, store, interval
        self.timeout = min(60.0, max(10.0, interval))
        self._state: dict = {"up": None, "latency": {}, "last_success": None, "runs": {}}
        self._lock = threading.Lock()

    def state(self) -> dict:
        with self._lock:
            return {**self._state, "runs": dict(self._state["runs"]), "latency": dict(self._state["latency"])}

    def run_once(self, stop: threading.Event | None = None) -> dict:
        report = run_canary(self.s, self.store, self.timeout, stop)
        result = "ok" if report["ok"] else ("error" if "publish failed" in report.get("error", "") else "timeout")
        with self._lock:
            st = self._state
            st["runs"][result] = st["runs"].get(result, 0) + 1
            st["up"] = 1 if report["ok"] else 0
            if report["ok"]:
                st["latency"], st["last_success"] = report["latency"], time.time()
        if not report["ok"]:
            log.warning("canary %s: %s", report["domain"], report.get("error"))
        return report

    def start(self, stop: threading.Event) -> threading.Thread:
        def loop():
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.run_once(stop)
                except Exception:  # noqa: BLE001 - the canary never stops the producer
                    log.exception("canary failed")
                stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

        t = threading.Thread(target=loop, name="canary", daemon=True)
        t.start()
        return t

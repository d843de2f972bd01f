"""What every command shares: settings from the environment, .env and the command's flags; logging; stop
signals."""
from __future__ import annotations

import logging
import signal
import threading

from scout.config import Settings, _replace, env_file, load_settings

log = logging.getLogger("scout")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("celery.worker.strategy", "celery.app.trace", "kombu", "amqp", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def settings_from(args) -> Settings:
    """Settings as configured (--env-file), with the command's --url, --sink and --output-dir on top."""
    s = load_settings(dotenv=getattr(args, "env_file", env_file()))
    changes = {}
    if getattr(args, "url", None):
        changes.update(certstream_url=args.url, source="certstream")
    if getattr(args, "sink", None):
        changes["sink"] = args.sink
    if getattr(args, "output_dir", None):
        changes["output_dir"] = args.output_dir
    return _replace(s, **changes) if changes else s


def install_stop_signals(stop: threading.Event, doing: str = "stopping after flushing what is buffered") -> None:
    """SIGINT/SIGTERM set `stop` (the program finishes what it holds); a second signal exits at once."""
    def handler(signum, frame):
        if stop.is_set():
            raise SystemExit(130)  # second signal: leave now
        log.info("signal %s: %s", signum, doing)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)

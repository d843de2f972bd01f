"""The Celery application (`celery -A scout worker -Q dns`). Configuration: celeryconfig.py."""
from __future__ import annotations

import importlib
import logging
import time

from celery import Celery
from celery.signals import after_setup_logger, before_task_publish

from scout import config

# The watchdog (worker leases, holds, stall detection) is loaded with the tasks into every worker.
app = Celery("scout", include=["scout.stages.tasks", "scout.ops.watchdog"])
app.config_from_object("celeryconfig")


@after_setup_logger.connect
def _quiet_per_task_lines(logger=None, loglevel=None, **kw) -> None:
    """One line per event, not per task: Celery logs every task's receipt and its return value (a
    whole batch of domains) and every retry at INFO. Those show with LOG_LEVEL=debug only; tasks that
    fail for good and errors are logged as usual, retries are counted (`scout stats`)."""
    level = loglevel if isinstance(loglevel, int) else logging.getLevelName(str(loglevel or "INFO").upper())
    if isinstance(level, int) and level > logging.DEBUG:
        for name in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(name).setLevel(max(logging.WARNING, level))


@before_task_publish.connect
def _stamp_published(headers=None, **_) -> None:
    """Every message carries the time it was published: `scout stats` shows the age of the oldest
    message of each queue (a queue that grows old has no live consumer)."""
    if headers is not None:
        headers["scout_published"] = time.time()


_pools_broker: dict = {}   # the broker URL the app's connection pools were made for


def configure(settings) -> Celery:
    """Re-read celeryconfig for `settings` (the CLI after its flags, tests with their own servers)."""
    config.set_settings(settings)
    import celeryconfig  # imported here: it reads the settings when imported; now they are the ones to use

    importlib.reload(celeryconfig)
    app.config_from_object(celeryconfig, force=True)
    # Pools made for another broker would carry on publishing there (a process configured twice: tests,
    # each with its own servers). The module is reloaded in place, so the URL is compared with our note.
    if _pools_broker.get("url") != app.conf.broker_url:
        app._pool = None
        app.amqp._producer_pool = None
        _pools_broker["url"] = app.conf.broker_url
    return app

"""The Celery application (`celery -A scout worker -Q dns`). Configuration: celeryconfig.py."""
from __future__ import annotations

import importlib
import logging
import time

from celery import Celery
from celery.signals import after_setup_logger, before_task_publish

from scout import config

app = Celery("scout", include=["scout.stages.tasks"])
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
def _stamp_publish_time(headers=None, **kw) -> None:
    """Every message carries the time it was published (header `scout_sent`): the metrics read the oldest
    waiting message of each queue to tell how long work has been waiting (scout.metrics)."""
    if isinstance(headers, dict):
        headers["scout_sent"] = time.time()


def configure(settings) -> Celery:
    """Re-read celeryconfig for `settings` (the CLI after its flags, tests with their own servers)."""
    config.set_settings(settings)
    import celeryconfig  # imported here: it reads the settings when imported; now they are the ones to use

    importlib.reload(celeryconfig)
    app.config_from_object(celeryconfig, force=True)
    return app

"""The Celery application (`celery -A scout worker -Q dns`). Configuration: celeryconfig.py."""
from __future__ import annotations

import importlib

from celery import Celery

app = Celery("scout", include=["scout.tasks"])
app.config_from_object("celeryconfig")


def configure(settings) -> Celery:
    """Re-read celeryconfig for `settings` (the CLI after its flags, tests with their own servers)."""
    from . import config

    config.set_settings(settings)
    import celeryconfig

    importlib.reload(celeryconfig)
    app.config_from_object(celeryconfig, force=True)
    return app

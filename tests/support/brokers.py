"""Brokers for in-process tests: the global Celery app pointed at a real Redis database or a private
RabbitMQ vhost, and put back to the embedded broker afterwards."""
from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager


@contextmanager
def rabbit_vhost(tag: str):
    """A private RabbitMQ vhost (queues of other tests and runs stay apart), removed afterwards."""
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    vhost = f"scout-{tag}-{os.getpid()}"
    for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        r = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"rabbitmqctl {' '.join(args)}: {r.stdout}{r.stderr}"
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


@contextmanager
def configured_app(env: dict):
    """The process's Celery app and settings for `env`; the embedded defaults again afterwards."""
    from scout.celery import configure
    from scout.config import load_settings
    from scout.store import set_store

    def reset(settings):
        app = configure(settings)
        # The connection and producer pools keep the broker they were made for: new ones for the new URL.
        app._pool = None
        app.amqp.__dict__["_producer_pool"] = None
        set_store(None)
        return app

    s = load_settings(env, None)
    try:
        yield reset(s), s
    finally:
        reset(load_settings({}, None))

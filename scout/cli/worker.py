"""`scout worker STAGE` (a Celery worker for one stage), `scout flower` and `scout bridge`."""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading

from scout.celery import configure
from scout.cli.common import install_stop_signals, settings_from
from scout.config import ConfigError, Settings, check_outputs, redact_url, store_url_of
from scout.cli.run import check_output_dir
from scout.counters import Counters
from scout.ops.metrics import serve_pipeline_metrics
from scout.producer.bridge import Bridge

log = logging.getLogger("scout")


def worker_argv(s: Settings, stage: str, ip: str | None = None, extra: list[str] | None = None) -> list[str]:
    """The `celery worker` command line for one stage."""
    # No gossip or mingle: workers need not know each other (Flower uses events), and both stalled
    # workers on reconnect after a Redis restart.
    base = [sys.executable, "-m", "celery", "-A", "scout", "worker", "-P", "threads",
            "-l", s.log_level, "-E", "--without-gossip", "--without-mingle"]
    if stage == "dns":
        argv = base + ["-Q", "dns", "-c", str(s.dns_workers), "-n", "dns@%h"]
    elif stage == "whois":
        argv = base + ["-Q", "whois", "-c", "8", "-n", "whois@%h"]
    elif stage == "lookup":
        queue_name = f"whois.{ip}" if ip else "whois.default"
        if queue_name not in s.whois_queues:
            raise ConfigError(f"WHOIS_IPS={','.join(s.whois_ips)!r}: no lookup queue {queue_name}")
        argv = base + ["-Q", queue_name, "-c", str(s.whois_workers), "-n", f"{queue_name}@%h"]
    elif stage == "save":
        argv = base + ["-Q", "save", "-c", "8", "-n", "save@%h"]
    elif stage == "all":
        queues = ",".join(["dns", "whois", "save"] + s.whois_queues)
        argv = base + ["-Q", queues, "-c", str(s.dns_workers), "-n", "all@%h"]
    else:
        raise ConfigError(f"unknown stage {stage!r}: dns, whois, lookup, save or all")
    return argv + (extra or [])


def cmd_worker(args) -> int:
    s = settings_from(args)
    if not s.broker_url:
        raise ConfigError("BROKER_URL: a separate worker needs a broker (e.g. redis://127.0.0.1:6379/0)")
    if args.stage in ("save", "all"):
        check_outputs(s, store_url_of(s))
        if s.output_files:
            check_output_dir(s)
    ip, extra = _take_ip(list(args.celery_args or []), args.ip)
    if ip:
        check_bindable(ip)
    argv = worker_argv(s, args.stage, ip, extra)
    log.info("exec %s", " ".join(argv))
    # Under the supervisor: a worker that stops consuming (after a Redis restart) exits 75 and is started
    # again, as is one that kombu ends with "Unrecoverable error".
    os.execv(sys.executable, [sys.executable, "-m", "scout.ops.supervisor", *argv])
    return 0  # not reached


def _take_ip(extra: list[str], ip: str | None) -> tuple[str | None, list[str]]:
    """`scout worker lookup --ip A [-- celery options]`: REMAINDER takes everything after the stage, --ip
    included, so take it back out here. -> (ip, the celery options)."""
    for i, a in enumerate(extra):
        if a == "--":
            break
        if a == "--ip" and i + 1 < len(extra):
            ip = extra[i + 1]
            del extra[i:i + 2]
            break
        if a.startswith("--ip="):
            ip = a.split("=", 1)[1]
            del extra[i]
            break
    if extra and extra[0] == "--":
        extra = extra[1:]
    return ip, extra


def check_bindable(ip: str) -> None:
    """A WHOIS worker must own its source address: fail at start, not at the first lookup."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError as exc:
            raise ConfigError(f"WHOIS_IPS: cannot bind source address {ip} on this host ({exc})") from None


def cmd_flower(args) -> int:
    s = settings_from(args)
    if not s.broker_url:
        raise ConfigError("BROKER_URL: Flower watches a broker shared with the workers")
    argv = [sys.executable, "-m", "celery", "-A", "scout", "flower", f"--port={args.port}",
            f"--address={args.address}"]
    env = flower_env(s, os.environ)
    if not s.flower_basic_auth and not args.no_auth:
        raise ConfigError("FLOWER_BASIC_AUTH: set user:password (or pass --no-auth on a trusted host)")
    os.execve(sys.executable, argv + list(args.flower_args or []), env)
    return 0


def flower_env(s, environ) -> dict:
    """Flower's environment: the password travels as FLOWER_BASIC_AUTH (Flower reads FLOWER_* options from
    its environment), never on the command line, where every user sees it in `ps` and /proc/*/cmdline.
    It may come from .env, so it is set here; an empty value is removed (Flower would take it as a user)."""
    env = dict(environ)
    env.pop("FLOWER_BASIC_AUTH", None)
    if s.flower_basic_auth:
        env["FLOWER_BASIC_AUTH"] = s.flower_basic_auth
    return env


def cmd_bridge(args) -> int:
    """NATS JetStream -> Celery chains until a signal; prints its counters."""
    s = settings_from(args)
    if not s.broker_url:
        raise ConfigError("BROKER_URL: `scout bridge` enqueues chains on a broker shared with the workers "
                          "(e.g. redis://127.0.0.1:6379/0)")
    app = configure(s)
    counters = Counters()
    stop = threading.Event()
    install_stop_signals(stop, "finishing the batch in hand, then stopping")
    serve_pipeline_metrics(s, app, counters)
    log.info("bridge: NATS %s stream %s -> broker %s", redact_url(s.nats_url), s.nats_stream,
             redact_url(s.broker_url))
    Bridge(s, counters).run(stop)
    print(json.dumps(counters.snapshot(), sort_keys=True))
    sys.stdout.flush()
    return 0

#!/usr/bin/env bash
# Set up, start the local servers the tests need when they are not already running (Redis, NATS with
# JetStream, RabbitMQ), then run the whole test suite. Test servers for DNS (nsd), WHOIS, RDAP, CT logs
# and certstream are started by the tests themselves, on loopback. Arguments go to pytest:
# `bash scripts/test.sh -m "not slow"` runs the unit and component tests only (1-2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=1 bash scripts/setup.sh

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_up() { for _ in $(seq 1 "${2:-60}"); do up "$1" && return 0; sleep 1; done; echo "service on port $1 did not start" >&2; return 1; }

if ! up 6379; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp >/dev/null
  wait_up 6379
fi
if ! up 4222; then
  mkdir -p /tmp/scout-nats
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/scout-nats >/tmp/scout-nats.log 2>&1 &
  wait_up 4222
fi
if ! up 5672; then
  (rabbitmq-server -detached >/dev/null 2>&1 || true)
  wait_up 5672 90 || echo "RabbitMQ unavailable: its test will fail" >&2
fi

export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

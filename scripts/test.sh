#!/usr/bin/env bash
# Set up, start the local servers the tests need when they are not already running (Redis, NATS with
# JetStream, RabbitMQ), then run the whole test suite. Test servers for DNS (nsd), WHOIS, RDAP, CT logs
# and certstream are started by the tests themselves, on loopback. Arguments go to pytest:
# `bash scripts/test.sh -m "not slow"` runs the unit and component tests only (1-2 minutes). Without
# arguments the suite runs as two pytest processes side by side (below).
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
pytest=(.venv/bin/python -m pytest -q -p no:cacheprovider)
if [ $# -gt 0 ]; then
  exec "${pytest[@]}" "$@"
fi

# The whole suite: two pytest processes side by side, split by folder. The long end-to-end tests mostly
# wait (lease expiry, DNS timeouts, restarts: the suite uses about a quarter of two cores), so the second
# half runs in that time. Each process has its own Redis, and its own NATS streams, RabbitMQ vhosts and
# PostgreSQL databases on the shared servers; a test module runs in one process only.
first=(tests/e2e tests/ops tests/producer)
second=(tests/db tests/sources tests/stages tests/watchlist tests/web tests/whois tests/test_*.py)
log=$(mktemp)
"${pytest[@]}" "${second[@]}" >"$log" 2>&1 &
other=$!
rc=0
"${pytest[@]}" "${first[@]}" || rc=$?
rc2=0
wait "$other" || rc2=$?
echo "---- ${second[*]}"
cat "$log"
rm -f "$log"
[ "$rc" -eq 0 ] && [ "$rc2" -eq 0 ]

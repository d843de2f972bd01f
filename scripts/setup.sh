#!/usr/bin/env bash
# Set up a checkout on Debian (Python 3.11): system packages, a virtualenv with the pinned requirements.
# Idempotent: quick when everything is already there. DEV=1 adds the test tools and test servers.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ "${DEV:-0}" = 1 ]; then
  [ -x /usr/sbin/nsd ] || need_apt+=(nsd)
  command -v redis-server >/dev/null || need_apt+=(redis-server)
  command -v nats-server >/dev/null || need_apt+=(nats-server)
  command -v rabbitmq-server >/dev/null || need_apt+=(rabbitmq-server)
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need_apt+=(postgresql)
  # the web page's tests drive a real headless browser through Selenium (tests/web/)
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  [ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# PostgreSQL for the store's tests (they create and drop databases of their own): started when it is
# installed but not listening; a server this script just installed gets the password the tests use
# (postgres/postgres, SCOUT_TEST_PG) -- Debian's default asks for one on 127.0.0.1.
if [ "${DEV:-0}" = 1 ] && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  pg_version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  $SUDO pg_ctlcluster "$pg_version" main start 2>/dev/null || $SUDO service postgresql start
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 1; done
  if printf '%s\n' "${need_apt[@]}" | grep -qx postgresql; then
    $SUDO -u postgres psql -q -c "ALTER USER postgres PASSWORD 'postgres'" 2>/dev/null \
      || su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
req=requirements.txt; [ "${DEV:-0}" = 1 ] && req=requirements-dev.txt
stamp=".venv/.installed-$(cat requirements.txt "$req" pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -r "$req"
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi

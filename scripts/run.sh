#!/usr/bin/env bash
# Set up, then run the whole pipeline in one process (`scout run`): CT logs read directly (or
# CERTSTREAM_URL), DNS via DNS_SERVER, WHOIS/RDAP, documents under OUTPUT_DIR. No broker needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/scout run "$@"

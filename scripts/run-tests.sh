#!/usr/bin/env bash
# Run the suite inside a fresh network namespace that has only loopback: nothing the tests do
# (WebRTC included) can reach any other address, even by mistake.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -rn); fi
exec "${ns[@]}" sh -c 'ip link set lo up && exec .venv/bin/python -m pytest "$@"' sh "$@"

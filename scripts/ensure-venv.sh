#!/usr/bin/env bash
# Create .venv with the system's python3 (installing Debian's python3-venv if it is missing).
set -euo pipefail
py="${PYTHON:-python3}"
if [ -x .venv/bin/python ]; then exit 0; fi
if ! "$py" -m venv --help >/dev/null 2>&1 || ! "$py" -c "import ensurepip" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "python3 cannot create virtual environments: install Debian's python3-venv" >&2
    exit 1
  fi
fi
"$py" -m venv .venv
.venv/bin/pip install -q --upgrade pip

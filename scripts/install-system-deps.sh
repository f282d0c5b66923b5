#!/usr/bin/env bash
# Debian packages the test suite needs: PostgreSQL (a throw-away server per test run), Chromium
# (browser tests; never `playwright install`), Korean fonts (screenshots), iproute2 (network
# namespaces, tc), nftables (packet loss in the link lab), coturn (TURN relay tests), Firefox ESR
# and Xvfb (the Firefox meeting test; headful Firefox shares a screen only on a display), redis-server
# and nginx (the scale-out tests start their own, on a unix socket and loopback; docs/scale.md).
# Installs only what is missing; needs root (or sudo).
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
command -v firefox-esr >/dev/null 2>&1 || need+=(firefox-esr)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)  # verifies the shipped units (deploy/)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
# `pip install -e .` compiles rtc/_sendmmsg.c, rtc/_rtp_writer.c and rtc/_seq_rewriter.c (the SFU's
# batched sends, each subscriber's packet written and SRTP-protected in one call, and its numbering): a C compiler and the
# headers of the Python the venv is made from
command -v gcc >/dev/null 2>&1 || need+=(gcc)
py="${PYTHON:-python3}"
[ -f "$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] || need+=(python3-dev)
for extra in "$@"; do
  dpkg -s "$extra" >/dev/null 2>&1 || need+=("$extra")
done

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a cluster on install; the tests start their own, so the default one is not needed.
if [[ " ${need[*]} " == *" postgresql "* ]]; then
  $sudo service postgresql stop >/dev/null 2>&1 || true
fi
# Same for coturn: the tests start their own turnserver on loopback with their own secret.
if [[ " ${need[*]} " == *" coturn "* ]]; then
  $sudo service coturn stop >/dev/null 2>&1 || true
fi
# Same for redis-server and nginx: the scale-out tests start their own, with their own config.
if [[ " ${need[*]} " == *" redis-server "* ]]; then
  $sudo service redis-server stop >/dev/null 2>&1 || true
fi
if [[ " ${need[*]} " == *" nginx-light "* ]]; then
  $sudo service nginx stop >/dev/null 2>&1 || true
fi

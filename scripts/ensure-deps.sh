#!/usr/bin/env bash
# Installs what building and testing Ringgate needs, or says exactly what is missing.
#   scripts/ensure-deps.sh build   — liburing-dev, libhiredis-dev (headers + libraries) and a Swift toolchain
#   scripts/ensure-deps.sh test    — the above, plus curl, python3-venv, chromium + chromium-driver,
#                                    redis-server + redis-tools and haproxy (the cluster tests), debootstrap,
#                                    prometheus (promtool) and systemd (systemd-analyze) for the deployment
#                                    kit's checks, and the pinned test clients
set -euo pipefail
want=${1:-build}
cd "$(dirname "$0")/.."

missing=()
dpkg -s liburing-dev >/dev/null 2>&1 || missing+=(liburing-dev)
dpkg -s libhiredis-dev >/dev/null 2>&1 || missing+=(libhiredis-dev)
if [ "$want" = test ]; then
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v strace >/dev/null 2>&1 || missing+=(strace)   # injects io_uring failures in a test
  command -v ss >/dev/null 2>&1 || missing+=(iproute2)     # ss, ip netns for the socket tests
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  # a real browser for the cross-origin tests (test_cors_browser.py), driven through selenium
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  # the cluster tests start a real Redis and a real haproxy on loopback
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
  # the deployment kit's checks: a bare Debian root for the release binary (make check-dist),
  # promtool for the alert rules, systemd-analyze for the unit
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-deps: installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "ensure-deps: missing Debian packages: ${missing[*]}" >&2
    echo "ensure-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "ensure-deps: no 'swift' on PATH; install Swift 6 (https://www.swift.org/install/linux/)" >&2
  exit 1
fi

if [ "$want" = test ]; then
  if [ ! -x .venv/bin/python ] || ! cmp -s tests/requirements.txt .venv/.requirements 2>/dev/null; then
    echo "ensure-deps: creating .venv with tests/requirements.txt"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt .venv/.requirements
  fi
fi

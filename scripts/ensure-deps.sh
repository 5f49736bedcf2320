#!/usr/bin/env bash
# Installs what the test suite needs from outside Go: Node packages for the
# end-to-end tests, Debian's Chromium for the browser test, and a Redis on
# 127.0.0.1:6379. Safe to run repeatedly; each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install WHAT PACKAGES...: apt-get install PACKAGES as root, or say what is missing.
apt_install() {
  local what=$1
  shift
  if [ "$(id -u)" = 0 ]; then
    echo "ensure-deps: installing $*" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "ensure-deps: $what is missing; install the Debian package(s): $*" >&2
  fi
}

[ -x /usr/bin/chromium ] || apt_install /usr/bin/chromium chromium

# The cluster tests also start redis-server themselves (to kill and restart it) and the
# capacity figures of docs/cluster.md come from redis-benchmark.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-benchmark >/dev/null 2>&1; then
  apt_install redis-server redis-server redis-tools
fi

# The systemd unit example is checked with systemd-analyze (cmd/signalbox TestSystemdUnit).
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd-analyze systemd

if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "ensure-deps: starting redis-server on 127.0.0.1:6379" >&2
    redis-server --daemonize yes --port 6379 --save '' >/dev/null
  else
    echo "ensure-deps: nothing answers on 127.0.0.1:6379 and redis-server is not installed" >&2
  fi
fi

if [ -f test/e2e/package-lock.json ]; then
  (cd test/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

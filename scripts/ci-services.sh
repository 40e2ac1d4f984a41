#!/usr/bin/env bash
# Starts the loopback services the test suites use when the machine has them installed but they
# are not running. Never fails the run: suites that need a service find or start their own, and
# report themselves skipped with the reason when none can be had.
set -u
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
fi
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
fi
# The playground's browser test drives Debian's chromium (it skips, saying why, when there is none).
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM_PATH:-}" ] && command -v apt-get >/dev/null 2>&1 \
  && [ "$(id -u)" = "0" ]; then
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1 \
    || echo "ci-services: could not install chromium; the browser test will be skipped"
fi
# The playground's metrics test scrapes `reelkit serve` with Debian's Prometheus (it skips, saying
# why, when there is none). Installing the package starts no daemon here: the test runs its own.
if ! command -v prometheus >/dev/null 2>&1 && [ -z "${PROMETHEUS_PATH:-}" ] && command -v apt-get >/dev/null 2>&1 \
  && [ "$(id -u)" = "0" ]; then
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; } >/dev/null 2>&1 \
    || echo "ci-services: could not install prometheus; the metrics test will be skipped"
fi
exit 0

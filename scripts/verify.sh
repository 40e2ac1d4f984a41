#!/usr/bin/env bash
# The project's whole check, the one command the README gives for "pass the tests" and the one
# `.ci/run` calls: install (pinned pnpm, frozen lockfile), type-check, lint, build, check the packed
# packages (publint, attw, a consumer project), then run every test and print "N passed, N failed".
# Needs only Node 20 and npm on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1 DO_NOT_TRACK=1
# better-sqlite3 compiles against Node's own headers when the machine has them (no prebuilt download here).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

pnpm_version=10.34.9
if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$pnpm_version" ]; then
  pnpm=(pnpm)
else
  pnpm=(npx --yes "pnpm@$pnpm_version")
fi

step() { printf '\n==> %s\n' "$*"; }

step "install"
"${pnpm[@]}" install --frozen-lockfile
step "check (tsc over the workspace, tests included)"
"${pnpm[@]}" run check
step "lint (biome: format + rules)"
"${pnpm[@]}" run lint
step "build (turbo: ESM + CJS + .d.ts)"
"${pnpm[@]}" run build
step "release flow (changeset version on a scratch copy)"
node scripts/changeset-check.mjs
step "pack check (publint, attw, consumer project)"
"${pnpm[@]}" run pack:check
step "test"
"${pnpm[@]}" run test:ci

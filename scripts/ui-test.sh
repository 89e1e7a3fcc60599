#!/usr/bin/env bash
# The web UI's end-to-end tests in headless Chromium (Debian's chromium package, driven by
# playwright-core; axe-core checks every page shown): installs Chromium with apt-get when it is
# missing, playwright-core and axe-core from npm into .tools/ui (git-ignored), builds Patchbay,
# and runs tests/ui/*.test.mjs with Node's test runner. Screenshots go to target/ui-screenshots.
#
# Usage: scripts/ui-test.sh [test file …]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's Chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

PLAYWRIGHT=1.65.2
AXE=4.14.1
if [ "$(node -p "require('./.tools/ui/node_modules/playwright-core/package.json').version" 2>/dev/null)" != "$PLAYWRIGHT" ] ||
  [ "$(node -p "require('./.tools/ui/node_modules/axe-core/package.json').version" 2>/dev/null)" != "$AXE" ]; then
  log "installing playwright-core $PLAYWRIGHT and axe-core $AXE into .tools/ui"
  mkdir -p .tools/ui
  # playwright-core downloads no browser; the tests launch /usr/bin/chromium.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix .tools/ui --no-audit --no-fund --loglevel=error \
    "playwright-core@$PLAYWRIGHT" "axe-core@$AXE" >/dev/null
fi

log "building patchbay"
cargo build -q -p patchbay-cli

files=("$@")
if [ "${#files[@]}" -eq 0 ]; then files=(tests/ui/*.test.mjs); fi
log "the web UI in Chromium: ${files[*]}"
node --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"

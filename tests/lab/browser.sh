#!/usr/bin/env bash
# Install Debian's Chromium for the browser test (tests/test_browser.py). Needs root.
#
# Idempotent and quick when Chromium is already there (one `test -x`). Never downloads a browser
# through Playwright (`playwright install` fetches from a CDN and fails on these machines): the
# test drives /usr/bin/chromium through Playwright's Python package (executable_path=...).
# `apt-get update` only runs when the install fails without it. Every apt call is bounded.
set -euo pipefail

chromium=/usr/bin/chromium
start=$SECONDS
log() { printf '[browser %3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

if [ -x "$chromium" ]; then
  log "chromium present: $chromium"
  exit 0
fi
[ "$(id -u)" = 0 ] || { log "needs root to apt-get install chromium"; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt_log=/tmp/kit-lab-browser-apt.log
log "apt-get install chromium (log: $apt_log)"
if ! timeout 300 apt-get install -y -q --no-install-recommends chromium >"$apt_log" 2>&1; then
  log "apt-get update (package lists missing or stale)"
  timeout 300 apt-get update -q >>"$apt_log" 2>&1 || { tail -n 20 "$apt_log" >&2; log "apt-get update failed"; exit 1; }
  timeout 300 apt-get install -y -q --no-install-recommends chromium >>"$apt_log" 2>&1 || {
    tail -n 20 "$apt_log" >&2; log "apt-get install chromium failed"; exit 1; }
fi
[ -x "$chromium" ] || { log "installed, but $chromium is missing"; exit 1; }
log "$("$chromium" --version 2>/dev/null || echo chromium) installed in $((SECONDS - start)) s"

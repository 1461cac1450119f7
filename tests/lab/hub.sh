#!/usr/bin/env bash
# Provision what the JupyterHub, site-preview and episode-block tests need. Needs root; .ci/run
# calls it after provision.sh and browser.sh (Chromium).
#
#   - Debian packages: pandoc (the site preview), docker-registry (the loopback registry that
#     stands in for ghcr.io in the episode blocks), nodejs + npm when no node is installed
#   - configurable-http-proxy (JupyterHub's proxy, from npm) under $KIT_LAB_CACHE/hub
#
# jupyterhub, nbgitpuller and sybil are Python packages: the project's test extra installs them.
# Idempotent: warm, it is a few `test -x`; `apt-get update` runs only when an install fails
# without it; every network call is bounded.
set -euo pipefail

cache="${KIT_LAB_CACHE:-/var/cache/kit-lab}/hub"
chp_version=5.3.0
start=$SECONDS
log() { printf '[hub %3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

need=()
command -v pandoc >/dev/null || need+=(pandoc)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { log "needs root to apt-get install ${need[*]}"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt_log=/tmp/kit-lab-hub-apt.log
  apt=(apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends)
  log "apt-get install ${need[*]} (log: $apt_log)"
  if ! timeout 600 "${apt[@]}" "${need[@]}" >"$apt_log" 2>&1; then
    log "apt-get update (package lists missing or stale)"
    timeout 300 apt-get -o DPkg::Lock::Timeout=300 update -q >>"$apt_log" 2>&1 || {
      tail -n 20 "$apt_log" >&2; log "apt-get update failed"; exit 1; }
    timeout 600 "${apt[@]}" "${need[@]}" >>"$apt_log" 2>&1 || {
      tail -n 20 "$apt_log" >&2; log "apt-get install ${need[*]} failed"; exit 1; }
  fi
fi
# The Debian package's own service (if an init system started one) is not used: the tests run
# their own registry on a free loopback port with a private storage folder.

chp="$cache/node_modules/.bin/configurable-http-proxy"
if [ -x "$chp" ] && [ "$("$chp" --version 2>/dev/null)" = "$chp_version" ]; then
  log "configurable-http-proxy $chp_version present: $chp"
else
  mkdir -p "$cache"
  log "npm install configurable-http-proxy@$chp_version into $cache"
  timeout 300 npm install --no-audit --no-fund --loglevel=error --prefix "$cache" \
    "configurable-http-proxy@$chp_version" >/tmp/kit-lab-hub-npm.log 2>&1 || {
    tail -n 20 /tmp/kit-lab-hub-npm.log >&2; log "npm install failed"; exit 1; }
  [ -x "$chp" ] || { log "installed, but $chp is missing"; exit 1; }
fi
log "ready in $((SECONDS - start)) s: pandoc $(pandoc --version | head -n1 | cut -d' ' -f2), node $(node --version)"

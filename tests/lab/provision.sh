#!/usr/bin/env bash
# Provision the offline lab (see tests/lab/README.md): the single entry point .ci/run calls.
#
#   1. Debian packages: docker.io, debootstrap, zstd, patchelf (apt-get update only when an
#      install needs it)
#   2. a Docker daemon (started in the background when `docker info` does not answer)
#   3. offline mode only (KIT_LAB_MODE=offline, the default):
#      the local conda channel (channel.py), the locked lab workspaces (workspace.py) and the
#      base images kit-lab/runtime:bookworm, kit-lab/pixi:bookworm (the stand-in emulating the
#      kit's pinned pixi) and kit-lab/pixi:bookworm-0.55.0 (emulating pixi 0.55.0) (base_images.sh)
#   4. a venv with torch for the host probe tests ($KIT_LAB_CACHE/torchvenv)
#   5. tests/lab/apptainer.sh, when present and executable
#
# Idempotent: everything is cached under ${KIT_LAB_CACHE:-/var/cache/kit-lab} and rebuilt only
# when missing. Cold: a few minutes; warm: seconds. Needs root.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export KIT_LAB_CACHE="${KIT_LAB_CACHE:-/var/cache/kit-lab}"
mode="${KIT_LAB_MODE:-offline}"
docker_bin=/usr/bin/docker
py="${KIT_LAB_PYTHON:-$repo/.venv/bin/python}"
start=$SECONDS

log() { printf '[provision %3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

case "$mode" in offline|connected) ;; *) log "KIT_LAB_MODE=$mode: expected offline or connected"; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { log "needs root (apt-get, dockerd, debootstrap)"; exit 1; }
log "mode $mode, cache $KIT_LAB_CACHE"
mkdir -p "$KIT_LAB_CACHE"

# ------------------------------------------------------------------ 1. Debian packages
need=()
{ [ -x "$docker_bin" ] && command -v dockerd >/dev/null; } || need+=(docker.io)
if [ "$mode" = offline ]; then
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v zstd >/dev/null || need+=(zstd)
  command -v patchelf >/dev/null || need+=(patchelf)  # channel.py: RPATHs into <prefix>/lib
fi
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get install ${need[*]}"
  if ! timeout 300 apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/kit-lab-apt.log 2>&1; then
    log "apt-get update (package lists missing or stale)"
    timeout 300 apt-get update -q >>/tmp/kit-lab-apt.log 2>&1
    timeout 300 apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/kit-lab-apt.log 2>&1 || {
      tail -n 20 /tmp/kit-lab-apt.log >&2; log "apt-get install failed"; exit 1; }
  fi
else
  log "Debian packages present"
fi

# ------------------------------------------------------------------ 2. Docker daemon
if timeout 10 "$docker_bin" info >/dev/null 2>&1; then
  log "docker daemon answers"
else
  log "starting dockerd in the background (log: /var/log/kit-lab-dockerd.log)"
  setsid nohup dockerd --host=unix:///var/run/docker.sock >/var/log/kit-lab-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 60); do
    timeout 5 "$docker_bin" info >/dev/null 2>&1 && break
    sleep 1
  done
  timeout 10 "$docker_bin" info >/dev/null 2>&1 || {
    tail -n 20 /var/log/kit-lab-dockerd.log >&2; log "dockerd not ready after 60 s"; exit 1; }
  log "docker daemon ready"
fi
# Seen on a shared machine: the daemon still answers but its docker0 bridge was deleted under it
# ("could not find bridge docker0"); put it back with the address the daemon expects.
if command -v ip >/dev/null && ! ip link show docker0 >/dev/null 2>&1; then
  gw="$(timeout 10 "$docker_bin" network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || true)"
  subnet="$(timeout 10 "$docker_bin" network inspect bridge -f '{{(index .IPAM.Config 0).Subnet}}' 2>/dev/null || true)"
  if [ -n "$gw" ] && [ -n "$subnet" ]; then
    log "docker0 bridge missing: recreating it ($gw/${subnet#*/})"
    ip link add docker0 type bridge && ip addr add "$gw/${subnet#*/}" dev docker0 && ip link set docker0 up
  fi
fi

# ------------------------------------------------------------------ 3. the offline lab
if [ "$mode" = offline ]; then
  "$py" -c 'import rattler' 2>/dev/null || {
    log "$py cannot import rattler: create the project's .venv first (./dev does)"; exit 1; }
  log "conda channel"
  timeout 600 "$py" "$here/channel.py"
  log "locked workspaces"
  timeout 120 "$py" "$here/workspace.py" >/dev/null
  log "base images"
  timeout 900 bash "$here/base_images.sh"
else
  log "connected mode: nothing to build (images are pulled, the workspace is examples/cuda-exercise)"
fi

# ------------------------------------------------------------------ a host torch for the probe tests
# tests/test_gpu.py runs the probe with a real CPU PyTorch on the host (under CI=true it must not
# skip): a venv in the cache, made once (`pip install torch==2.13.0` takes the wheel on disk).
torchvenv="$KIT_LAB_CACHE/torchvenv"
if timeout 120 "$torchvenv/bin/python" -c 'import torch' >/dev/null 2>&1; then
  log "host torch venv present ($torchvenv)"
else
  log "host torch venv: pip install torch==2.13.0 into $torchvenv"
  rm -rf "$torchvenv"
  python3 -m venv "$torchvenv"
  timeout 900 "$torchvenv/bin/python" -m pip install -q torch==2.13.0 >"$KIT_LAB_CACHE/torchvenv.log" 2>&1 || {
    tail -n 20 "$KIT_LAB_CACHE/torchvenv.log" >&2; rm -rf "$torchvenv"; log "pip install torch failed"; exit 1; }
fi

# ------------------------------------------------------------------ 4. Apptainer (someone else's)
if [ -x "$here/apptainer.sh" ]; then
  log "tests/lab/apptainer.sh"
  "$here/apptainer.sh"
else
  log "tests/lab/apptainer.sh not present (or not executable): skipped"
fi
# ------------------------------------------------------------------ 5. Slurm and HTCondor (needs 4)
[ -x "$here/schedulers.sh" ] && { log "tests/lab/schedulers.sh"; "$here/schedulers.sh"; }
log "done in $((SECONDS - start)) s"

#!/usr/bin/env bash
# Provision the lab's linux-aarch64 side (issue 17): arm64 images, SIFs and installs on this amd64
# machine, under emulation. .ci/run calls it after provision.sh (the channel, the amd64 images,
# Apptainer) and hub.sh; run it yourself as root. See tests/lab/README.md, "linux-aarch64".
#
#   1. Debian's qemu-user-static and binfmt-support (and docker-registry, when hub.sh has not
#      installed it); binfmt_misc mounted; qemu-aarch64 registered, with the F flag (the kernel
#      opens the interpreter once, so arm64 programs run in any container or mount namespace)
#   2. the lab channel's linux-aarch64 packages (aarch64_channel.py) and the workspace locked for
#      linux-64 and linux-aarch64 ($KIT_LAB_CACHE/workspace-aarch64, workspace.py --aarch64)
#   3. kit-lab/runtime:bookworm-arm64 and kit-lab/pixi:bookworm-arm64 (KIT_LAB_ARCH=arm64
#      base_images.sh: an arm64 debootstrap's first stage finished by foreign_root.sh, no second
#      stage under qemu; FROM scratch + ADD under --platform linux/arm64)
#   4. a registry on $KIT_LAB_REGISTRY (default 127.0.0.1:5017; Debian's docker-registry, its
#      storage in $KIT_LAB_CACHE/registry) holding kit-lab/runtime:bookworm and
#      kit-lab/pixi:bookworm as manifest lists of amd64 + arm64: the lab's local image store (Docker
#      20.10, no containerd store) holds one architecture per name, a registry holds both
#   5. a check: an arm64 container reports aarch64
#
#   tests/lab/aarch64.sh         idempotent; warm: a few seconds
#   tests/lab/aarch64.sh stop    stop the registry this script started (by its recorded PID)
#
# Everything is cached under ${KIT_LAB_CACHE:-/var/cache/kit-lab}: the arm64 root file systems
# (rootfs/*-arm64.tar), .deb files (debs-arm64), package lists (apt-arm64), wheels, the registry's
# storage and, per manifest list, a stamp of the two images it was made from. Needs root.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export KIT_LAB_CACHE="${KIT_LAB_CACHE:-/var/cache/kit-lab}"
registry="${KIT_LAB_REGISTRY:-127.0.0.1:5017}"
docker_bin=/usr/bin/docker
py="${KIT_LAB_PYTHON:-$repo/.venv/bin/python}"
reg_dir="$KIT_LAB_CACHE/registry"
binfmt=/proc/sys/fs/binfmt_misc
start=$SECONDS

log() { printf '[aarch64 %3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }
die() { log "error: $*"; exit 1; }
registry_up() { curl -fsS -m 5 -o /dev/null "http://$registry/v2/" 2>/dev/null; }

if [ "${1:-}" = stop ]; then
  pid="$(cat "$reg_dir/registry.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; log "registry (PID $pid) stopped"; fi
  rm -f "$reg_dir/registry.pid"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "needs root (apt-get, mount, debootstrap)"
[ "${KIT_LAB_MODE:-offline}" = offline ] || { log "KIT_LAB_MODE=${KIT_LAB_MODE}: nothing to do"; exit 0; }

# ------------------------------------------------------------------ 1. qemu and binfmt_misc
need=()
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt=(apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends)
  log "apt-get install ${need[*]} (log: /tmp/kit-lab-aarch64-apt.log)"
  if ! timeout 600 "${apt[@]}" "${need[@]}" >/tmp/kit-lab-aarch64-apt.log 2>&1; then
    log "apt-get update (package lists missing or stale)"
    timeout 300 apt-get -o DPkg::Lock::Timeout=300 update -q >>/tmp/kit-lab-aarch64-apt.log 2>&1
    timeout 600 "${apt[@]}" "${need[@]}" >>/tmp/kit-lab-aarch64-apt.log 2>&1 || {
      tail -n 20 /tmp/kit-lab-aarch64-apt.log >&2; die "apt-get install ${need[*]} failed"; }
  fi
fi
# Not mounted at boot on this machine kind; mounting it adds a capability and takes none away.
mountpoint -q "$binfmt" || { log "mounting binfmt_misc on $binfmt"; mount -t binfmt_misc binfmt_misc "$binfmt"; }
if [ "$(head -n1 "$binfmt/qemu-aarch64" 2>/dev/null)" != enabled ]; then
  log "update-binfmts --enable qemu-aarch64"
  update-binfmts --enable qemu-aarch64
fi
grep -q '^flags:.*F' "$binfmt/qemu-aarch64" ||
  die "qemu-aarch64 is registered without the F flag ($(grep '^flags' "$binfmt/qemu-aarch64")): containers cannot reach the interpreter"
log "qemu-aarch64 registered ($(grep '^flags' "$binfmt/qemu-aarch64"))"

# ------------------------------------------------------------------ 2. channel and workspace
"$py" -c 'import rattler' 2>/dev/null || die "$py cannot import rattler: create the project's .venv first (./dev does)"
log "channel: linux-aarch64"
timeout 900 "$py" "$here/aarch64_channel.py"
log "workspace locked for linux-64 and linux-aarch64"
timeout 300 "$py" "$here/workspace.py" --aarch64 >/dev/null

# ------------------------------------------------------------------ 3. arm64 base images
log "arm64 base images (cold: debootstrap --foreign and foreign_root.sh, about a minute)"
KIT_LAB_ARCH=arm64 KIT_LAB_PYTHON="$py" timeout 2400 bash "$here/base_images.sh"

# ------------------------------------------------------------------ 4. registry and manifest lists
mkdir -p "$reg_dir/data"
if registry_up; then
  log "registry answers on $registry"
else
  cat >"$reg_dir/config.yml" <<EOF
# kit-lab: the loopback registry that holds the lab's multi-architecture images (aarch64.sh)
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $reg_dir/data
  delete:
    enabled: true
http:
  addr: $registry
EOF
  log "starting docker-registry on $registry (log: $reg_dir/registry.log)"
  setsid nohup /usr/bin/docker-registry serve "$reg_dir/config.yml" >"$reg_dir/registry.log" 2>&1 </dev/null &
  echo $! >"$reg_dir/registry.pid"
  for _ in $(seq 30); do registry_up && break; sleep 1; done
  registry_up || { tail -n 20 "$reg_dir/registry.log" >&2; die "registry not answering on $registry after 30 s"; }
fi

# publish NAME: NAME (this machine's amd64 image) and NAME-arm64 pushed to the registry as
# NAME-amd64 and NAME-arm64, and NAME there made a manifest list of the two. Redone only when
# either image changed (the stamp holds both image IDs) or the list is gone from the registry.
manifest_list_type=application/vnd.docker.distribution.manifest.list.v2+json
publish() {
  local name=$1 path=${1%%:*} tag=${1##*:} amd arm key
  amd="$("$docker_bin" image inspect -f '{{.Id}}' "$name")" || die "$name missing: run tests/lab/provision.sh"
  arm="$("$docker_bin" image inspect -f '{{.Id}}' "$name-arm64")" || die "$name-arm64 missing"
  key="$amd $arm"
  local stamp="$reg_dir/stamps/$path/$tag"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] &&
    curl -fsS -m 10 -o /dev/null -H "Accept: $manifest_list_type" "http://$registry/v2/$path/manifests/$tag"; then
    log "$registry/$name: present (amd64 + arm64)"
    return
  fi
  local arch
  for arch in amd64 arm64; do
    local src=$name
    [ "$arch" = amd64 ] || src="$name-$arch"
    "$docker_bin" tag "$src" "$registry/$path:$tag-$arch"
    log "docker push $registry/$path:$tag-$arch"
    timeout 900 "$docker_bin" push -q "$registry/$path:$tag-$arch" >/dev/null
    "$docker_bin" rmi "$registry/$path:$tag-$arch" >/dev/null   # the tag only: the image stays
  done
  # a private client configuration: `docker manifest` keeps its lists there, not in root's
  export DOCKER_CONFIG="$reg_dir/docker-config"
  "$docker_bin" manifest rm "$registry/$path:$tag" >/dev/null 2>&1 || true
  "$docker_bin" manifest create --insecure "$registry/$path:$tag" \
    "$registry/$path:$tag-amd64" "$registry/$path:$tag-arm64" >/dev/null
  "$docker_bin" manifest push --insecure --purge "$registry/$path:$tag" >/dev/null
  unset DOCKER_CONFIG
  mkdir -p "$(dirname "$stamp")"
  printf '%s\n' "$key" >"$stamp"
  log "$registry/$name: manifest list of amd64 + arm64"
}
publish "${KIT_LAB_RUNTIME_REPO:-kit-lab/runtime}:bookworm"
publish "${KIT_LAB_PIXI_REPO:-kit-lab/pixi}:bookworm"

# ------------------------------------------------------------------ 5. check
got="$(timeout 120 "$docker_bin" run --rm --network none --platform linux/arm64 "${KIT_LAB_RUNTIME_REPO:-kit-lab/runtime}:bookworm-arm64" uname -m)"
[ "$got" = aarch64 ] || die "an arm64 container says '$got', not aarch64"
log "ready in $((SECONDS - start)) s: arm64 containers run (uname -m: $got), registry $registry"

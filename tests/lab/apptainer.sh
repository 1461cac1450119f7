#!/usr/bin/env bash
# Provision Apptainer for the lab tests on a Debian 12 machine.
#
# Debian 12 ships no apptainer, and Debian sid's apptainer needs a newer glibc than the host has.
# So this script builds (once, cached) a Debian sid root file system that holds apptainer, and
# tests/lab/bin/apptainer runs apptainer from inside it (see tests/lab/APPTAINER.md).
#
#   tests/lab/apptainer.sh            # idempotent; prints what it does
#
# Environment:
#   KIT_LAB_CACHE          cache directory (default /var/cache/kit-lab)
#   KIT_LAB_DEBIAN_MIRROR  Debian mirror URL (default: read from the machine's own apt sources)
#   KIT_LAB_TIMEOUT        upper bound in seconds for each long step (default 900)
#
# Layout under $KIT_LAB_CACHE:
#   apptainer-root/            the sid root file system (complete when .kit-lab-ready matches)
#   apptainer-root.tar.{zst,gz} the same, as a tarball, so a lost or broken tree is restored fast
#   apptainer.lock             serialises concurrent provisioning
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KIT_LAB_CACHE:-/var/cache/kit-lab}
ROOT=$CACHE/apptainer-root
STEP_TIMEOUT=${KIT_LAB_TIMEOUT:-900}
LAB_USER=kitlab
# Bump STAMP when the recipe below changes: trees and tarballs with another stamp are rebuilt.
INCLUDE=apptainer,squashfs-tools,ca-certificates,uidmap,squashfuse,fuse2fs,fuse3,fakeroot,gocryptfs
STAMP="v2 sid minbase include=$INCLUDE user=$LAB_USER"

log() { printf '[apptainer.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=tests/lab/rootfs_cache.sh
. "$here/rootfs_cache.sh"

[ "$(id -u)" = 0 ] || die "must run as root (it runs debootstrap, apt-get and mounts)"

started=$SECONDS

# --- the Debian mirror, from the machine's own apt sources -------------------------------------
mirror_url() {
    if [ -n "${KIT_LAB_DEBIAN_MIRROR:-}" ]; then
        printf '%s\n' "$KIT_LAB_DEBIAN_MIRROR"
        return
    fi
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # one-line format ("deb [opts] URL suite ...") and deb822 format ("URIs: URL ...")
        awk '
            /^[[:space:]]*#/ { next }
            /^deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }
            /^URIs:/ { for (i = 2; i <= NF; i++) print $i }
        ' "$f"
    done | grep -E '^(https?|file)://.*/debian/?$' | head -n1
}

# --- debootstrap ------------------------------------------------------------------------------
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap (apt-get)"
    timeout "$STEP_TIMEOUT" apt-get "${APT_OPTS[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive timeout "$STEP_TIMEOUT" \
        apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends debootstrap
else
    log "debootstrap present: $(command -v debootstrap)"
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/apptainer.lock"
log "waiting for $CACHE/apptainer.lock"
timeout "$STEP_TIMEOUT" flock 9 || die "could not take $CACHE/apptainer.lock within ${STEP_TIMEOUT}s"

rootfs_tarball "$CACHE" apptainer-root

# Keep the tree: debootstrap, then the user. Runs in a fresh directory next to ROOT, which is
# moved into place only when complete, so an interrupted run leaves nothing half-built at ROOT.
build_tree() {
    local mirror new=$ROOT.new
    mirror=$(mirror_url)
    [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*; set KIT_LAB_DEBIAN_MIRROR"
    rm -rf "$new"
    log "debootstrap sid (minbase, include=$INCLUDE) from the apt sources' Debian mirror into $new"
    local t0=$SECONDS
    timeout "$STEP_TIMEOUT" debootstrap --variant=minbase --include="$INCLUDE" sid "$new" "$mirror" \
        >"$CACHE/debootstrap.log" 2>&1 || {
        tail -n 30 "$CACHE/debootstrap.log" >&2
        die "debootstrap failed (log: $CACHE/debootstrap.log)"
    }
    log "debootstrap done in $((SECONDS - t0)) s"

    # The unprivileged user apptainer runs as. Fixed uid 1000; tests/lab/bin/apptainer maps the
    # host's root to it on its bind mounts. Subordinate ids give apptainer's --fakeroot a full
    # id range (newuidmap, from uidmap) instead of the single-id fallback.
    log "creating user $LAB_USER (uid 1000) with /etc/subuid and /etc/subgid entries"
    if ! chroot "$new" getent passwd "$LAB_USER" >/dev/null; then
        if chroot "$new" getent passwd 1000 >/dev/null; then
            die "uid 1000 is taken in the sid root"
        fi
        chroot "$new" useradd --create-home --uid 1000 --user-group --shell /bin/bash "$LAB_USER"
    fi
    for f in subuid subgid; do
        grep -q "^$LAB_USER:" "$new/etc/$f" 2>/dev/null || echo "$LAB_USER:100000:65536" >>"$new/etc/$f"
    done
    # Clear apt's downloaded packages: they are not needed to run apptainer.
    rm -f "$new"/var/cache/apt/archives/*.deb
    printf '%s\n' "$STAMP" >"$new/.kit-lab-ready"
    rm -rf "$ROOT"
    mv "$new" "$ROOT"
}

rootfs_provision "sid root" "$ROOT" .kit-lab-ready "$STAMP" build_tree

# What the wrapper relies on from the host kernel: user namespaces (apptainer runs unprivileged)
# and FUSE (it mounts a .sif with squashfuse).
if [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)" = 0 ]; then
    log "warning: user namespaces are disabled (user.max_user_namespaces=0): apptainer will fail"
fi
[ -c /dev/fuse ] || log "warning: no /dev/fuse: 'apptainer exec/run/test' on a .sif will fail"

log "checking: $here/bin/apptainer --version"
ver=$(KIT_LAB_CACHE=$CACHE timeout 120 "$here/bin/apptainer" --version) || die "the wrapper could not run apptainer"
log "ok: $ver (provisioned in $((SECONDS - started)) s)"
log "use: KIT_APPTAINER=$here/bin/apptainer, or put $here/bin on PATH"

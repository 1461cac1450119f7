#!/usr/bin/env bash
# The inside of the lab's HTCondor: run by tests/lab/schedulers.sh as
#   unshare --mount --propagation private -- bash condor_ns.sh CONDOR_ROOT RUN_DIR KIT_LAB_CACHE
# It makes a throwaway overlay (the cached condor root below, RUN_DIR above) the root of this
# mount namespace with pivot_root, binds the host's /tmp, /work and the lab cache at the same
# paths (id-mapped: host root <-> kitlab, uid 1000, the user jobs run as, as
# tests/lab/bin/apptainer does), then becomes condor_master. Everything dies with the master.
set -euo pipefail
ROOT=$1 RUN=$2 CACHE=$3
LAB_UID=1000
trap 'echo "condor_ns.sh: setup failed at line $LINENO" >&2' ERR

mount --make-rprivate /
mkdir -p "$RUN/upper" "$RUN/work" "$RUN/root"
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$RUN/upper,workdir=$RUN/work" "$RUN/root"
NEW=$RUN/root
mount -t proc proc "$NEW/proc"
mount --rbind /sys "$NEW/sys"
mount --rbind /dev "$NEW/dev"
mount -t tmpfs -o mode=0755 tmpfs "$NEW/run"
mknod -m 0666 "$NEW/run/.fuse" c 10 229
mount --bind "$NEW/run/.fuse" "$NEW/dev/fuse"
for f in /etc/hosts /etc/resolv.conf; do [ -e "$f" ] && cp -L "$f" "$NEW$f" 2>/dev/null || true; done
mkdir -p "$NEW/.oldroot"
cd "$NEW"
pivot_root . .oldroot
cd /

IDMAP="b:$LAB_UID:0:1 b:0:$LAB_UID:1 b:1:1:$((LAB_UID - 1)) b:$((LAB_UID + 1)):$((LAB_UID + 1)):$((4294967295 - LAB_UID - 1))"
for p in /tmp /work "$CACHE"; do
    [ -d "/.oldroot$p" ] || continue
    mkdir -p "$p"
    mount --bind -o "X-mount.idmap=$IDMAP" "/.oldroot$p" "$p"
done
# Condor's lock and run directories (systemd's tmpfiles makes them on a booted system; /var/lock
# is a link into /run, so only now, inside, do they land in this namespace's own /run).
mkdir -p /run/condor /run/lock/condor
chown condor:condor /run/condor /run/lock/condor
umount -l /.oldroot
rmdir /.oldroot
trap - ERR
exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root condor_master -f

#!/usr/bin/env bash
# Provision and start the lab's two schedulers: a single-node Slurm and a single-node HTCondor.
#
#   tests/lab/schedulers.sh            # idempotent, as root; prints what it does
#   tests/lab/schedulers.sh stop       # stop the daemons it started (by their recorded PIDs)
#
# Slurm 22.05 (Debian 12's slurm-wlm + munge) runs on the host. The node advertises one GPU
# (gres `gpu`, File=/dev/null) so that GPU requests can be scheduled, and refused when they ask
# for more than one, on a machine without a GPU.
#
# HTCondor 25.x comes from Debian sid (`minicondor`), which needs a newer glibc than the host's,
# so it runs from a copy of the lab's sid root file system (tests/lab/apptainer.sh makes it),
# entered with unshare + pivot_root like tests/lab/bin/apptainer (under a chroot the starter
# cannot make a mount namespace and container jobs are held). Debian's package lacks
# /usr/libexec/condor/exit_37.sif, the image the startd uses to test Apptainer; without it no
# container job ever matches, so it is built here. Client commands run in the daemons' mount
# namespace through tests/lab/bin/htcondor/ (condor_submit, condor_q, ...), as user kitlab
# (uid 1000): HTCondor refuses jobs from root.
#
# Cached under ${KIT_LAB_CACHE:-/var/cache/kit-lab}:
#   condor-root/ + condor-root.tar.{zst,gz}   the sid root with minicondor and exit_37.sif
#   schedulers/                                Slurm config and state, HTCondor run state, PIDs
# Cold: about 1-2 minutes (apt-get); warm with daemons running: about a second.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KIT_LAB_CACHE:-/var/cache/kit-lab}
STATE=$CACHE/schedulers
SID_ROOT=$CACHE/apptainer-root
CONDOR_ROOT=$CACHE/condor-root
STEP_TIMEOUT=${KIT_LAB_TIMEOUT:-900}
LAB_UID=1000
CONDOR_STAMP="v1 minicondor exit_37.sif config=kit-lab-1"
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)

log() { printf '[schedulers.sh %3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=tests/lab/rootfs_cache.sh
. "$here/rootfs_cache.sh"

# --------------------------------------------------------------------------- helpers
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {
    local f=$1 pid
    pid_alive "$f" || { rm -f "$f"; return 0; }
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
}

if [ "${1:-}" = stop ]; then
    for f in slurmd slurmctld condor_master munged; do stop_pidfile "$STATE/$f.pid"; done
    log "stopped"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, daemons, mounts)"
mkdir -p "$STATE"
exec 8>"$STATE/provision.lock"
timeout "$STEP_TIMEOUT" flock 8 || die "could not take $STATE/provision.lock"

# =========================================================================== Slurm (host)
slurm_install() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null && return 0
    log "apt-get install slurm-wlm munge (Debian 12: Slurm 22.05)"
    local pkgs=(slurm-wlm munge slurmd slurmctld slurm-client)
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 300 apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${pkgs[@]}" \
        >"$STATE/apt.log" 2>&1; then
        timeout 300 apt-get "${APT_OPTS[@]}" update -q >>"$STATE/apt.log" 2>&1
        timeout 300 apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${pkgs[@]}" \
            >>"$STATE/apt.log" 2>&1 || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get failed"; }
    fi
}

slurm_config() {
    local node cpus mem conf
    node=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 / 2 }' /proc/meminfo)  # half: safely below
    mkdir -p /etc/slurm "$STATE/slurm/ctld" "$STATE/slurm/d" /var/log/slurm
    conf=$(cat <<EOF
# Written by tests/lab/schedulers.sh: one node, one partition, a GPU that is /dev/null.
ClusterName=kitlab
SlurmctldHost=$node
AuthType=auth/munge
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$STATE/slurm/ctld
SlurmdSpoolDir=$STATE/slurm/d
SlurmctldPidFile=$STATE/slurm/slurmctld.pid
SlurmdPidFile=$STATE/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
MinJobAge=3600
GresTypes=gpu
NodeName=$node CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=lab Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
)
    local gres="AutoDetect=off
NodeName=$node Name=gpu File=/dev/null"
    if [ "$(cat /etc/slurm/slurm.conf 2>/dev/null)" != "$conf" ] || [ "$(cat /etc/slurm/gres.conf 2>/dev/null)" != "$gres" ]; then
        log "writing /etc/slurm/slurm.conf and gres.conf"
        printf '%s\n' "$conf" >/etc/slurm/slurm.conf
        printf '%s\n' "$gres" >/etc/slurm/gres.conf
        SLURM_RESTART=1
    fi
}

slurm_start() {
    SLURM_RESTART=${SLURM_RESTART:-0}
    slurm_config
    if ! timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then
        log "starting munged (as user munge)"
        mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
        runuser -u munge -- munged 8>&-
        for _ in $(seq 20); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.2; done
        cp /run/munge/munged.pid "$STATE/munged.pid" 2>/dev/null || true
    fi
    if [ "$SLURM_RESTART" = 1 ]; then
        stop_pidfile "$STATE/slurmd.pid"; stop_pidfile "$STATE/slurmctld.pid"
    fi
    if ! pid_alive "$STATE/slurmctld.pid"; then
        log "starting slurmctld"
        setsid nohup slurmctld -D -i >"$STATE/slurmctld.out" 2>&1 </dev/null 8>&- &
        echo $! >"$STATE/slurmctld.pid"
    fi
    for _ in $(seq 50); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
    if ! pid_alive "$STATE/slurmd.pid"; then
        log "starting slurmd"
        setsid nohup slurmd -D >"$STATE/slurmd.out" 2>&1 </dev/null 8>&- &
        echo $! >"$STATE/slurmd.pid"
    fi
    local state=""
    for _ in $(seq 75); do
        state=$(timeout 5 sinfo -h -N -o %t 2>/dev/null | head -n1 || true)
        case "$state" in idle | mix | alloc) break ;; drain* | down* | drng) \
            timeout 5 scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true ;; esac
        sleep 0.2
    done
    case "$state" in idle | mix | alloc) log "slurm ready: node $(hostname -s) $state" ;;
        *) tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
           die "slurm node not idle (state '$state')" ;; esac
}

# =========================================================================== HTCondor (sid root)
rootfs_tarball "$CACHE" condor-root

# Run a command as root inside ROOT, entered with pivot_root in a private mount namespace.
# Used for apt-get (a chroot would do) and for building exit_37.sif (apptainer needs pivot_root).
in_root() {
    local root=$1; shift
    unshare --mount --propagation private -- bash -euc '
        root=$1; shift
        mount --make-rprivate /
        mount --bind "$root" "$root"
        mount -t proc proc "$root/proc"
        mount --rbind /sys "$root/sys"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        mount -t tmpfs -o mode=0755 tmpfs "$root/run"
        cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
        mknod -m 0666 "$root/run/fuse" c 10 229 && mount --bind "$root/run/fuse" "$root/dev/fuse"
        mkdir -p "$root/.oldroot"
        cd "$root" && pivot_root . .oldroot && cd /
        umount -l /.oldroot
        exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive "$@"
    ' in-root "$root" "$@"
}

condor_build_tree() {
    local new=$CONDOR_ROOT.new
    [ -f "$SID_ROOT/.kit-lab-ready" ] || die "no sid root at $SID_ROOT: run tests/lab/apptainer.sh first"
    log "copying the sid root to $new"
    rm -rf "$new"
    cp -a "$SID_ROOT" "$new"
    rm -f "$new/.kit-lab-ready"
    printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d" && chmod 0755 "$new/usr/sbin/policy-rc.d"
    log "apt-get install minicondor in it (about 40 s)"
    # The machine's clock may lag the mirror's Release validity window: do not let that stop us.
    local opts="${APT_OPTS[*]} -o Acquire::Check-Valid-Until=false"
    in_root "$new" bash -c "apt-get $opts update -q && apt-get $opts install -y -q --no-install-recommends minicondor" \
        >"$STATE/condor-apt.log" 2>&1 || { tail -n 30 "$STATE/condor-apt.log" >&2; die "minicondor install failed"; }
    rm -f "$new"/var/cache/apt/archives/*.deb
    cat >"$new/etc/condor/config.d/50-kit-lab.conf" <<'EOF'
# Written by tests/lab/schedulers.sh: a personal pool that answers quickly in tests.
SINGULARITY = /usr/bin/apptainer
# cgroup v1 is not writable on this machine kind: no cgroup limits.
CGROUP_MEMORY_LIMIT_POLICY = none
BASE_CGROUP =
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
SCHEDD_INTERVAL = 2
UPDATE_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
STARTD_CONTAINER_TEST_TIMEOUT = 60
EOF
    log "building /usr/libexec/condor/exit_37.sif (Debian's package lacks it)"
    chown -R "$LAB_UID:$LAB_UID" "$new/tmp" 2>/dev/null || true
    in_root "$new" bash -c "setpriv --reuid=$LAB_UID --regid=$LAB_UID --init-groups env HOME=/tmp \
        apptainer build --force /tmp/exit_37.sif /usr/libexec/condor/singularity_test_sandbox >/tmp/build.log 2>&1 \
        || { cat /tmp/build.log; exit 1; }; cp /tmp/exit_37.sif /usr/libexec/condor/exit_37.sif" \
        >"$STATE/exit37.log" 2>&1 || { tail -n 30 "$STATE/exit37.log" >&2; die "exit_37.sif build failed"; }
    printf '%s\n' "$CONDOR_STAMP" >"$new/.kit-lab-condor"
    rm -rf "$CONDOR_ROOT"
    mv "$new" "$CONDOR_ROOT"
}

condor_provision() {
    rootfs_provision "condor root" "$CONDOR_ROOT" .kit-lab-condor "$CONDOR_STAMP" condor_build_tree
}

condor_ready() {
    timeout 20 "$here/bin/htcondor/condor_status" -startd -af HasSingularity 2>/dev/null | grep -q true
}

condor_start() {
    if pid_alive "$STATE/condor_master.pid" && condor_ready; then
        log "htcondor running (master pid $(cat "$STATE/condor_master.pid"))"
        return 0
    fi
    stop_pidfile "$STATE/condor_master.pid"
    log "starting condor_master in its own mount namespace"
    rm -rf "$STATE/condor" && mkdir -p "$STATE/condor"
    setsid nohup unshare --mount --propagation private -- bash "$here/condor_ns.sh" \
        "$CONDOR_ROOT" "$STATE/condor" "$CACHE" >"$STATE/condor_master.out" 2>&1 </dev/null 8>&- &
    echo $! >"$STATE/condor_master.pid"
    local t0=$SECONDS
    until condor_ready; do
        pid_alive "$STATE/condor_master.pid" || { tail -n 20 "$STATE/condor_master.out" >&2; die "condor_master exited"; }
        [ $((SECONDS - t0)) -lt 120 ] || { tail -n 20 "$STATE/condor_master.out" >&2; die "htcondor startd not ready with Apptainer after 120 s"; }
        sleep 1
    done
    log "htcondor ready in $((SECONDS - t0)) s: $("$here/bin/htcondor/condor_version" | head -n1)"
}

slurm_install
slurm_start
condor_provision
condor_start
log "done; clients: sbatch/squeue (host), $here/bin/htcondor/condor_* (HTCondor)"

#!/bin/bash
# The practice pool's entrypoint: configure and start a one-node Slurm and a one-node HTCondor in
# this container, check that Apptainer can run a container here, then wait. Learners work as the
# user `learner` (practice/start opens a shell as that user).
#
# What the container needs from `docker run` (no --privileged): user namespaces for Apptainer
# (`--security-opt seccomp=unconfined`: Docker's default profile refuses unshare(CLONE_NEWUSER)),
# a /proc it may mount in them (`--security-opt systempaths=unconfined`), and, to mount SIFs
# without unpacking them, `--device /dev/fuse`. Without /dev/fuse, Apptainer unpacks each SIF
# into a temporary folder first (slower, more disk). On hosts whose AppArmor confines Docker,
# also `--security-opt apparmor=unconfined`.
#
# PRACTICE_PLAIN_HTTP=1: HTCondor passes --no-https to Apptainer (a registry on the pool's own
# loopback, as the offline lab runs one); never for ghcr.io.
set -euo pipefail

log() { printf '[practice-pool] %s\n' "$*"; }
die() { log "error: $*"; exit 1; }

node=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 / 2 }' /proc/meminfo)
gpu_file=/dev/null
[ -e /dev/nvidia0 ] && gpu_file=/dev/nvidia0

chmod 1777 /tmp
[ -e /dev/fuse ] && chmod 0666 /dev/fuse

# ----------------------------------------------------------------------------- Apptainer
check_apptainer() {
    local sif=/usr/libexec/condor/exit_37.sif out status
    if [ ! -s "$sif" ]; then  # Debian's minicondor lacks the startd's test image
        out=$(runuser -u learner -- env HOME=/tmp apptainer build --force /tmp/exit_37.sif \
            /usr/libexec/condor/singularity_test_sandbox 2>&1) || {
            printf '%s\n' "$out" | tail -n 5 >&2
            die "Apptainer cannot build an image here: start the container with --security-opt seccomp=unconfined --security-opt systempaths=unconfined (practice/start does)"
        }
        cp /tmp/exit_37.sif "$sif" && rm -f /tmp/exit_37.sif
    fi
    set +e
    out=$(cd /tmp && runuser -u learner -- env HOME=/tmp apptainer exec "$sif" /exit_37 2>&1)
    status=$?
    set -e
    [ "$status" = 37 ] || {
        printf '%s\n' "$out" | tail -n 5 >&2
        die "Apptainer cannot run a container here (exit $status): start the container with --security-opt seccomp=unconfined --security-opt systempaths=unconfined --device /dev/fuse (practice/start does)"
    }
    log "apptainer $(apptainer --version | awk '{print $NF}') runs containers as learner"
}

# ----------------------------------------------------------------------------- Slurm
start_slurm() {
    mkdir -p /etc/slurm /var/spool/slurm/ctld /var/spool/slurm/d /var/log/slurm /run/munge
    cat >/etc/slurm/slurm.conf <<CONF
# Written by the practice pool: one node, one partition.
ClusterName=practice
SlurmctldHost=$node
AuthType=auth/munge
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=/var/spool/slurm/ctld
SlurmdSpoolDir=/var/spool/slurm/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MinJobAge=3600
GresTypes=gpu
NodeName=$node CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=practice Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s\n' "$node" "$gpu_file" >/etc/slurm/gres.conf
    [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key /run/munge && chmod 0400 /etc/munge/munge.key
    runuser -u munge -- munged
    slurmctld -D -i >/var/log/slurm/slurmctld.out 2>&1 &
    for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
    slurmd -D >/var/log/slurm/slurmd.out 2>&1 &
}

# ----------------------------------------------------------------------------- HTCondor
start_condor() {
    cat >/etc/condor/config.d/60-practice-pool.conf <<CONF
# Written by the practice pool: a personal pool that answers quickly, Apptainer for containers,
# and the GPUs from /usr/local/libexec/practice-gpus (a pretend one without a real GPU).
SINGULARITY = /usr/bin/apptainer
CGROUP_MEMORY_LIMIT_POLICY = none
BASE_CGROUP =
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
SCHEDD_INTERVAL = 2
UPDATE_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
STARTD_CONTAINER_TEST_TIMEOUT = 60
MACHINE_RESOURCE_INVENTORY_GPUs = /usr/local/libexec/practice-gpus
CONF
    if [ "${PRACTICE_PLAIN_HTTP:-0}" = 1 ]; then
        echo 'SINGULARITY_EXTRA_ARGUMENTS = --no-https' >>/etc/condor/config.d/60-practice-pool.conf
    fi
    mkdir -p /var/run/condor /var/lock/condor /var/log/condor
    chown condor:condor /var/run/condor /var/lock/condor /var/log/condor
    condor_master -f >/var/log/condor/master.out 2>&1 &
}

wait_ready() {
    local t0=$SECONDS slurm="" condor=""
    while [ $((SECONDS - t0)) -lt 300 ]; do
        slurm=$(sinfo -h -N -o %t 2>/dev/null | head -n1 || true)
        condor=$(condor_status -startd -af HasSingularity 2>/dev/null | head -n1 || true)
        case "$slurm" in idle | mix | alloc) [ "$condor" = true ] && break ;; esac
        sleep 1
    done
    case "$slurm" in idle | mix | alloc) ;; *) tail -n 20 /var/log/slurm/slurmctld.log >&2 || true; die "Slurm's node is not idle ('$slurm')" ;; esac
    [ "$condor" = true ] || { tail -n 20 /var/log/condor/StartLog >&2 || true; die "HTCondor's startd cannot run containers"; }
    log "ready in $((SECONDS - t0)) s: Slurm node $node ($cpus CPUs), HTCondor $(condor_version | awk 'NR==1{print $2}'), GPU: $([ "$gpu_file" = /dev/null ] && echo 'none (GPU jobs run on the CPU)' || echo "$gpu_file")"
}

stop_all() {
    log "stopping"
    condor_off -master -fast >/dev/null 2>&1 || true
    kill $(jobs -p) 2>/dev/null || true
    exit 0
}
trap stop_all TERM INT

check_apptainer
start_slurm
start_condor
wait_ready
touch /run/practice-pool-ready
wait

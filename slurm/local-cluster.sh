#!/usr/bin/env bash
# local-cluster.sh — a real single-node Slurm cluster on this machine, for circd's Slurm tests (tests/slurm/) and
# for trying `sbatch slurm/grid.sh` without an HPC site. Debian 12, as root, works without systemd (containers, CI).
#
#   slurm/local-cluster.sh install   apt-get what is missing of slurm-wlm slurmctld slurmd slurm-client munge
#   slurm/local-cluster.sh start     munged, /etc/slurm/slurm.conf, slurmctld, slurmd; returns when the node takes jobs
#   slurm/local-cluster.sh status    what runs; exit 0 when the cluster answers and its node takes jobs, 1 otherwise
#   slurm/local-cluster.sh stop      cancel the jobs, then stop the daemons THIS script started (by their recorded pid)
#   slurm/local-cluster.sh check     status + a one-line `sbatch --wait` job
#
# Every command is idempotent: what already runs is left alone, and stop never touches a daemon it did not start.
# State, logs and pids live in $CIRCD_SLURM_DIR (default /tmp/circd-slurm). Knobs (environment):
#   CIRCD_SLURM_DIR             state directory                                      /tmp/circd-slurm
#   CIRCD_SLURM_REQUEUE_DELAY   munge credential lifetime (Slurm's cred_expire), which is also how long a requeued
#                               job waits before it may start again (Slurm's default is 120 s)              10
#
# What this cluster is (facts that hold on Debian 12 with Slurm 22.05 and Open MPI 4.1):
# - One node named `localhost` (address 127.0.0.1, `slurmd -N localhost`, so the host name does not matter) with the
#   CPUs, cores and memory `slurmd -C` detects; cores are the consumable resource (select/cons_tres, CR_Core).
# - Everything runs as root except munged, which refuses to run as root and runs as the `munge` user.
# - No cgroups (proctrack/linuxproc, task/none) and no accounting database: `sacct` does not work, `scontrol show job`
#   does (finished jobs stay visible for MinJobAge = 300 s).
# - MpiDefault=pmix: `srun prog` starts Open MPI ranks directly. Debian's Open MPI has no PMI-1/2, so --mpi=pmi2 fails.
#   `mpirun` inside a job works too; as root it wants OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
# - `scontrol requeue ID` sends SIGTERM to the batch shell and every task, SIGKILL KillWait = 30 s later, and requeues
#   the job, which starts again after the requeue delay (`scontrol update JobId=ID StartTime=now` skips it) with
#   SLURM_RESTART_COUNT=1, 2, ... Output files are truncated on a restart unless the job asked for --open-mode=append.
# - Partitions: `batch` (default, preemptable: a job of `urgent` requeues its jobs) and `urgent`.
set -euo pipefail

STATE=${CIRCD_SLURM_DIR:-/tmp/circd-slurm}
CONF=/etc/slurm/slurm.conf
STAMP="# written by circd slurm/local-cluster.sh"
NODE=localhost
PACKAGES=(slurm-wlm slurmctld slurmd slurm-client munge)

say() { printf 'local-cluster: %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }
need_root() { [[ $(id -u) == 0 ]] || fail "run me as root (the daemons and /etc/slurm need it)"; }

# is_up PID: the process exists and is not a zombie (a container's PID 1 may reap stopped daemons late).
is_up() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]; }
# ours NAME: the daemon NAME that this script started (pid recorded in $STATE/pids) still runs.
ours() { [[ -s $STATE/pids/$1 ]] && is_up "$(<"$STATE/pids/$1")"; }

install_packages() {
    need_root
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then say "packages present"; return; fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

munge_answers() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_answers; then say "munged answers already"; return; fi
    if [[ ! -s /etc/munge/munge.key ]]; then   # the package's postinst normally made one
        install -d -o munge -g munge -m 0700 /etc/munge
        (umask 0377 && head -c 1024 /dev/urandom >/etc/munge/munge.key)
        chown munge:munge /etc/munge/munge.key
        say "made /etc/munge/munge.key"
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    local i
    for i in $(seq 50); do munge_answers && break; sleep 0.1; done
    munge_answers || fail "munged does not answer (see /var/log/munge/munged.log)"
    cp /run/munge/munged.pid "$STATE/pids/munged"
    say "munged started (pid $(<"$STATE/pids/munged"))"
}

# The node line from what slurmd detects, under our node name; memory a little under the detected total so that
# slurmd never finds less than configured (which would drain the node).
node_line() {
    local hw
    hw=$(slurmd -C | head -n 1) || fail "slurmd -C failed"
    hw=${hw#NodeName=* }
    local mem=${hw##*RealMemory=}
    printf 'NodeName=%s NodeAddr=127.0.0.1 %s RealMemory=%d State=UNKNOWN\n' \
        "$NODE" "${hw% RealMemory=*}" $((mem * 95 / 100))
}

write_config() {
    local delay=${CIRCD_SLURM_REQUEUE_DELAY:-10}
    [[ $delay =~ ^[0-9]+$ ]] || fail "CIRCD_SLURM_REQUEUE_DELAY must be a number of seconds, not '$delay'"
    if [[ -e $CONF ]] && ! grep -qF "$STAMP" "$CONF"; then
        [[ -e $CONF.before-circd ]] || cp "$CONF" "$CONF.before-circd"
        say "$CONF was not ours: kept a copy as $CONF.before-circd"
    fi
    install -d /etc/slurm
    cat >"$CONF.new" <<EOF
$STAMP; state in $STATE
ClusterName=circd-local
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=$delay
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=pmix
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
KillWait=30
MinJobAge=300
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
$(node_line)
PartitionName=batch  Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=1 PreemptMode=REQUEUE
PartitionName=urgent Nodes=$NODE Default=NO  MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=10 PreemptMode=OFF
EOF
    if cmp -s "$CONF.new" "$CONF"; then rm -f "$CONF.new"; return; fi
    mv "$CONF.new" "$CONF"
    say "wrote $CONF"
    # Daemons of ours running on an older configuration restart on the new one (job state survives in $STATE/ctld).
    if ours slurmctld || ours slurmd; then
        say "configuration changed: restarting slurmctld and slurmd"
        stop_daemon slurmd
        stop_daemon slurmctld
    fi
}

# node_state: the node's state as sinfo reports it, empty when the controller does not answer.
node_state() { timeout 10 sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1 || true; }

start_cluster() {
    need_root
    command -v slurmctld >/dev/null || fail "Slurm is not installed: run '$0 install' first"
    install -d "$STATE"/{ctld,spool,log,run,pids}
    start_munge
    write_config
    # Each daemon forks, writes its pid file and returns; we record the pid as ours.
    if ours slurmctld; then say "slurmctld runs already"; else
        /usr/sbin/slurmctld
        wait_for_file "$STATE/run/slurmctld.pid" && cp "$STATE/run/slurmctld.pid" "$STATE/pids/slurmctld"
        say "slurmctld started"
    fi
    if ours slurmd; then say "slurmd runs already"; else
        /usr/sbin/slurmd -N "$NODE"
        wait_for_file "$STATE/run/slurmd.pid" && cp "$STATE/run/slurmd.pid" "$STATE/pids/slurmd"
        say "slurmd started"
    fi
    local i state=
    for i in $(seq 60); do
        state=$(node_state)
        case $state in
            idle* | mixed* | allocated* | completing*) say "node $NODE is $state: ready"; return ;;
            down* | drain* | fail*) ((i % 5)) || scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 1
    done
    fail "node $NODE is '${state:-not answering}' after a minute; logs in $STATE/log"
}

wait_for_file() {
    local i
    for i in $(seq 100); do [[ -s $1 ]] && return 0; sleep 0.1; done
    say "warning: $1 did not appear"
    return 1
}

# stop_daemon NAME: TERM the daemon we started, KILL it if it is still there 15 s later.
stop_daemon() {
    local pid i
    if ! ours "$1"; then rm -f "$STATE/pids/$1"; return 0; fi
    pid=$(<"$STATE/pids/$1")
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do is_up "$pid" || break; sleep 0.1; done
    if is_up "$pid"; then say "$1 still runs: KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$STATE/pids/$1"
}

stop_cluster() {
    need_root
    if ours slurmctld && [[ -n $(timeout 10 squeue -h -o %i 2>/dev/null) ]]; then
        say "cancelling the jobs still queued or running"
        scancel --user=root 2>/dev/null || true
        local i
        for i in $(seq 60); do [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break; sleep 1; done
    fi
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon munged
}

show_status() {
    local d up=0
    for d in munged slurmctld slurmd; do
        if ours "$d"; then echo "$d: running (pid $(<"$STATE/pids/$d"), started by this script)"
        else echo "$d: not started by this script"; fi
    done
    local state
    state=$(node_state)
    echo "node $NODE: ${state:-no answer from slurmctld}"
    case $state in idle* | mixed* | allocated* | completing*) up=1 ;; esac
    ((up))
}

check_cluster() {
    show_status
    local out
    out=$(mktemp "$STATE/check-XXXXXX.out")
    # shellcheck disable=SC2016  # $SLURM_JOB_ID expands inside the job
    sbatch --wait --quiet -J circd-check -n 1 -t 1 -o "$out" --wrap 'echo "job $SLURM_JOB_ID ran on $(hostname)"'
    cat "$out"
    rm -f "$out"
}

case ${1:-} in
    install) install_packages ;;
    start) start_cluster ;;
    status) show_status ;;
    stop) stop_cluster ;;
    check) check_cluster ;;
    *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac

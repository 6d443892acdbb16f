#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for testing the workflow's SLURM path
# (profiles/slurm) without a real cluster: munged + slurmctld + slurmd from Debian's packages,
# configured for localhost, no accounting database.
#
#   scripts/slurm_local.sh install   apt-get install slurmctld slurmd slurm-client munge (if missing)
#   scripts/slurm_local.sh start     write the configuration and start the daemons (idempotent)
#   scripts/slurm_local.sh status    say whether the daemons are up; show the node
#   scripts/slurm_local.sh env       print `export SLURM_CONF=...` for sbatch, squeue, snakemake
#   scripts/slurm_local.sh stop      stop the daemons this script started (and nothing else)
#
# Everything lives under $SRDA_SLURM_DIR (default /tmp/srda-slurm): slurm.conf, gres.conf, its
# own munge key and socket, state, spool, logs and pid files. Nothing under /etc is touched and
# a system munged or SLURM is left alone; clients find this cluster through SLURM_CONF and the
# link /run/slurm/conf (see RUN_LINK below), which stop removes.
#
# The node is configured from the machine: its CPU count (`nproc`, at least
# $SRDA_SLURM_MIN_CPUS, default 2, so that jobs with threads=2 fit) and its memory (`slurmd -C`,
# less $SRDA_SLURM_RESERVE_MB, default 512, for the daemons and Snakemake itself). It also
# advertises $SRDA_SLURM_GPUS (default: one per CPU) `gpu` generic resources whose device files
# are links to /dev/null: GPU requests (`sbatch --gpus=1`, what profiles/slurm asks for the
# training rules) are then scheduled exactly as on a GPU cluster, and the jobs, finding no CUDA,
# run on the CPU and say so in their logs. SRDA_SLURM_GPUS=0 advertises none.
#
# Must run as root (the daemons need it; SlurmUser=root). Ports: $SRDA_SLURM_PORT (default 6817)
# for slurmctld and the next one for slurmd.
set -euo pipefail

DIR=${SRDA_SLURM_DIR:-/tmp/srda-slurm}
PORT=${SRDA_SLURM_PORT:-6817}
MIN_CPUS=${SRDA_SLURM_MIN_CPUS:-2}
RESERVE_MB=${SRDA_SLURM_RESERVE_MB:-512}
CONF="$DIR/etc/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket"
NODE=$(hostname -s)
# SLURM's clients look for their configuration in $SLURM_CONF, then /etc/slurm/slurm.conf, then
# /run/slurm/conf/slurm.conf (where slurmd keeps a configless node's copy). Snakemake's job steps
# run srun with every SLURM_* variable removed, SLURM_CONF included, so this script links
# /run/slurm/conf to its own configuration folder (and removes the link on stop).
RUN_LINK=/run/slurm/conf
PARTITION=debug
export SLURM_CONF="$CONF"

say() { echo "slurm_local: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

need_root() {
    [ "$(id -u)" = 0 ] || die "run as root (the SLURM daemons need it)"
}

cmd_install() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    if [ ${#missing[@]} -eq 0 ]; then
        say "slurm and munge already installed ($(slurmd -V))"
        return
    fi
    need_root
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    say "installed $(slurmd -V)"
}

# pid of a daemon we started, if it is still alive and still ours (its command line names $DIR).
our_pid() {
    local name=$1 pidfile="$DIR/run/$1.pid" pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name.*$DIR" || return 1
    echo "$pid"
}

node_state() {
    sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            say "timed out waiting for $what; logs in $DIR/log"
            tail -n 20 "$DIR"/log/*.log >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

no_jobs_running() {
    [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ]
}

node_ready() {
    case "$(node_state)" in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
    esac
}

write_config() {
    local cpus mem gpus
    cpus=$(nproc)
    [ "$cpus" -ge "$MIN_CPUS" ] || cpus=$MIN_CPUS
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [ -n "$mem" ] || die "could not read this machine's memory from 'slurmd -C'"
    mem=$((mem - RESERVE_MB))
    gpus=${SRDA_SLURM_GPUS:-$cpus}

    mkdir -p "$DIR"/{etc,state,spool,log,run,munge}
    chmod 755 "$DIR" "$DIR/munge"
    local gres_line="" gres_types=""
    if [ "$gpus" -gt 0 ]; then
        gres_line=" Gres=gpu:$gpus"
        gres_types="GresTypes=gpu"
        # Stand-in GPUs: links to /dev/null (SLURM wants a character device), no autodetection.
        mkdir -p "$DIR/dev"
        for ((i = 0; i < gpus; i++)); do ln -sfn /dev/null "$DIR/dev/gpu$i"; done
        printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s\n' \
            "$NODE" "$DIR/dev/gpu[0-$((gpus - 1))]" >"$DIR/etc/gres.conf"
    else
        : >"$DIR/etc/gres.conf"
    fi
    cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a one-node test cluster on $NODE ($cpus CPUs, $mem MB,
# $gpus stand-in GPUs). Regenerated on every start.
ClusterName=srda-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups (containers rarely allow them) and no accounting database.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# The node is described by hand (CPUs and memory only): trust it rather than drain it.
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to squeue and scontrol for an hour (Snakemake polls with squeue).
MinJobAge=3600
KillWait=5
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem$gres_line State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

cmd_start() {
    need_root
    for tool in slurmctld slurmd munged sbatch; do
        command -v $tool >/dev/null || die "$tool not found: run '$0 install' first"
    done
    if our_pid munged >/dev/null && our_pid slurmctld >/dev/null && our_pid slurmd >/dev/null &&
        node_ready; then
        say "already up: node $NODE $(node_state); export SLURM_CONF=$CONF"
        return
    fi
    local t0=$SECONDS
    # Whatever is left of an earlier, partial start goes first.
    cmd_stop quiet
    write_config
    if [ -e /etc/slurm/slurm.conf ]; then
        say "warning: /etc/slurm/slurm.conf exists: srun inside jobs will use it, not this cluster"
    fi
    if [ -e "$RUN_LINK" ] && ! [ -L "$RUN_LINK" -a "$(readlink "$RUN_LINK")" = "$DIR/etc" ]; then
        die "$RUN_LINK exists and is not this script's: is another SLURM node running here?"
    fi
    mkdir -p "$(dirname "$RUN_LINK")"
    ln -sfn "$DIR/etc" "$RUN_LINK"
    if [ ! -s "$DIR/munge/munge.key" ]; then
        (umask 077 && head -c 1024 /dev/urandom >"$DIR/munge/munge.key")
    fi
    munged --force --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    wait_for 10 munged test -S "$MUNGE_SOCKET"
    slurmctld -f "$CONF"
    wait_for 30 slurmctld scontrol ping
    slurmd -f "$CONF" -N "$NODE"
    if ! wait_for 30 "node $NODE" node_ready; then
        scontrol update nodename="$NODE" state=resume || true
        wait_for 15 "node $NODE" node_ready || die "node $NODE is $(node_state)"
    fi
    say "up in $((SECONDS - t0)) s: node $NODE $(node_state), partition $PARTITION"
    say "clients need: export SLURM_CONF=$CONF"
}

cmd_stop() {
    local quiet=${1:-}
    local name pid jobs
    # Jobs still on this cluster go first, so that no job step outlives slurmd.
    if our_pid slurmctld >/dev/null; then
        jobs=$(squeue -h -o %i 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086  # one job id per word
            scancel $jobs 2>/dev/null || true
            wait_for 30 "jobs to end" no_jobs_running || true
            [ -n "$quiet" ] || say "cancelled jobs $(echo $jobs)"
        fi
    fi
    for name in slurmd slurmctld munged; do
        if pid=$(our_pid $name); then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            if kill -0 "$pid" 2>/dev/null; then
                kill -9 "$pid" 2>/dev/null || true
            fi
            [ -n "$quiet" ] || say "stopped $name ($pid)"
        fi
        rm -f "$DIR/run/$name.pid"
    done
    if [ -L "$RUN_LINK" ] && [ "$(readlink "$RUN_LINK")" = "$DIR/etc" ]; then
        rm -f "$RUN_LINK"
    fi
}

cmd_status() {
    local name pid up=0
    for name in munged slurmctld slurmd; do
        if pid=$(our_pid $name); then
            say "$name running ($pid)"
        else
            say "$name not running"
            up=1
        fi
    done
    [ $up = 0 ] && sinfo -N -o "%N %T %c %m %G" >&2
    return $up
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) echo "export SLURM_CONF=$CONF" ;;
*)
    echo "usage: $0 install|start|status|env|stop" >&2
    exit 2
    ;;
esac

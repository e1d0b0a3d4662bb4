#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the Slurm tests and for trying `--executor slurm`.
#
# Run as root on a Debian machine (a container is fine: no systemd, no cgroups needed). It installs
# Debian's slurm-wlm and munge, writes /etc/slurm/slurm.conf for this host (its name, CPUs and
# memory), starts munged, slurmctld and slurmd, and waits until the node is idle and `srun
# hostname` works. Idempotent: a second run finds everything up and returns in a second or two.
#
# Not for a real cluster: one node, root as SlurmUser, no accounting database (sacct is off;
# squeue and the runs' heartbeats tell the state instead), no cgroups.
set -euo pipefail

PARTITION=${SLURM_LOCAL_PARTITION:-debug}
CONF=/etc/slurm/slurm.conf
STATE=/var/lib/slurm-local
LOGS=/var/log/slurm-local
started=$(date +%s.%N)

say() { echo "slurm-local: $*"; }
fail() { echo "slurm-local: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs packages and starts daemons)"

# --- packages -------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! command -v sbatch >/dev/null; then
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# --- munge: the authentication every Slurm daemon and command uses --------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || fail "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurm.conf for this host ----------------------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(free -m | awk '/^Mem:/ {print $2}')
real_mb=$((mem_mb * 9 / 10))  # leave some to the system: a node whose memory is below the config is drained
def_mem=$((real_mb / cpus))
install -d -m 0755 /etc/slurm "$STATE/ctld" "$STATE/d" "$LOGS"
new_conf=$(cat <<EOF
# Written by scripts/slurm-local.sh: a single-node Slurm for tests and local use.
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Containers: no cgroups. Processes are tracked through /proc; tasks are not bound to CPUs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$def_mem
# Preemption and \`scontrol requeue\` put a job back in the queue; it runs again and resumes.
JobRequeue=1
ReturnToService=2
KillWait=30
MinJobAge=300
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)

alive() {  # alive PIDFILE: the daemon recorded there is running
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}
stop_daemon() {  # stop_daemon PIDFILE: end the daemon recorded there (and only it)
    if alive "$1"; then
        local pid
        pid=$(cat "$1")
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$1"
}

if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
    printf '%s\n' "$new_conf" > "$CONF"
    # A changed node or daemon setting needs fresh daemons.
    stop_daemon /run/slurmd.pid
    stop_daemon /run/slurmctld.pid
fi

# --- daemons ---------------------------------------------------------------------------------------
if ! alive /run/slurmctld.pid; then
    say "starting slurmctld"
    slurmctld -i || fail "slurmctld did not start (see $LOGS/slurmctld.log)"
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.2; done
scontrol ping | grep -q 'is UP' || fail "slurmctld does not answer (see $LOGS/slurmctld.log)"
if ! alive /run/slurmd.pid; then
    say "starting slurmd"
    slurmd || fail "slurmd did not start (see $LOGS/slurmd.log)"
fi

# --- wait for the node, then run one real job step -------------------------------------------------
state=""
for i in $(seq 150); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null | head -1)
    case "$state" in
        idle|mix|alloc|comp) break ;;
        down*|drain*|drng*|fail*)
            # A node that was down before this start (e.g. a previous container's daemons).
            [ $((i % 10)) = 1 ] && scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.2
done
case "$state" in
    idle|mix|alloc|comp) ;;
    *) fail "node $host is '${state:-unknown}' ($(scontrol show node "$host" 2>/dev/null | grep -o 'Reason=.*' || true); logs in $LOGS)" ;;
esac
out=$(timeout 120 srun -N1 -n1 -t 1 -p "$PARTITION" hostname 2>&1) || fail "srun hostname failed: $out"
[ "$out" = "$host" ] || [ "$out" = "$(hostname)" ] || fail "srun hostname printed '$out', expected '$host'"

version=$(sinfo --version | awk '{print $2}')
secs=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "slurm-local: OK (Slurm $version, node $host: $cpus CPUs, $real_mb MB, partition $PARTITION, ${secs}s)"

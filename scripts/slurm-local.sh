#!/usr/bin/env bash
# A private single-node Slurm cluster on this machine (for tests and trying `cbtm launch
# --scheduler slurm` without a cluster): munged + slurmctld + slurmd with their config, state,
# logs and pid files under one directory. Needs root (slurmd starts jobs as their user) and
# Debian's slurm-wlm + munge (scripts/install-deps.sh installs them).
#
#   scripts/slurm-local.sh start [DIR]   # default DIR: /tmp/cbtm-slurm; prints `export SLURM_CONF=...`
#   eval "$(scripts/slurm-local.sh env [DIR])"   # point sbatch/squeue at it
#   scripts/slurm-local.sh stop [DIR]    # stops the daemons (waits for them) and keeps DIR's logs
#
# It never touches /etc/slurm: clients find the cluster through SLURM_CONF=DIR/slurm.conf.
# Ports: CBTM_SLURM_PORT (default 6917) for slurmctld and the next one for slurmd.
set -euo pipefail
cmd="${1:-}"
dir="$(realpath -m "${2:-/tmp/cbtm-slurm}")"
port="${CBTM_SLURM_PORT:-6917}"
conf="$dir/slurm.conf"

die() { echo "slurm-local: $*" >&2; exit 1; }

wait_gone() {  # pidfile
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

start() {
  [ "$(id -u)" -eq 0 ] || die "needs root (slurmd runs jobs as their submitting user); run it with sudo"
  for b in munged slurmctld slurmd sbatch; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || die "$b not found: apt-get install slurm-wlm munge"
  done
  mkdir -p "$dir"/{state,spool}
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem="$(awk '/MemTotal/ {print int($2/1024*0.9)}' /proc/meminfo)"
  cat > "$conf" <<CONF
# written by scripts/slurm-local.sh
ClusterName=cbtm-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=60
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  # munged: the system instance if one answers on this root's socket, else start it (as the
  # munge user). A munged process alone says nothing: one of another root (a chroot's host)
  # shows in pgrep but its socket is not ours.
  if ! { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }; then
    [ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    # (a munged that runs but did not answer in time refuses a second one: checked below)
    if command -v runuser >/dev/null; then runuser -u munge -- /usr/sbin/munged || true
    else su -s /bin/sh munge -c /usr/sbin/munged || true; fi
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 ||
      die "munged does not answer on /run/munge (see /var/log/munge/munged.log)"
  fi
  wait_gone "$dir/slurmd.pid"; wait_gone "$dir/slurmctld.pid"
  SLURM_CONF="$conf" /usr/sbin/slurmctld -f "$conf" -i
  SLURM_CONF="$conf" /usr/sbin/slurmd -f "$conf"
  # 10 s in all: sinfo itself waits for a slurmctld that does not answer, so each call is bounded
  local deadline=$(( $(date +%s) + 10 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if SLURM_CONF="$conf" timeout 3 sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "slurm-local: up ($host, $cpus CPUs, ${mem} MB; logs in $dir)" >&2
      echo "export SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.1
  done
  die "the node did not come up within 10 s; see $dir/slurmctld.log and $dir/slurmd.log"
}

case "$cmd" in
  start) start ;;
  env) echo "export SLURM_CONF=$conf" ;;
  stop)
    wait_gone "$dir/slurmd.pid"
    wait_gone "$dir/slurmctld.pid"
    echo "slurm-local: stopped (logs kept in $dir)" >&2 ;;
  *) die "usage: slurm-local.sh start|env|stop [DIR]" ;;
esac

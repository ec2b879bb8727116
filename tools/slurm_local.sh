#!/usr/bin/env bash
# slurm_local.sh - run a private, throw-away single-node Slurm cluster on
# localhost (munged + slurmctld + slurmd), for integration tests.
#
# Usage:
#   tools/slurm_local.sh start DIR   # prints "export ..." lines on stdout
#   tools/slurm_local.sh stop  DIR
#   tools/slurm_local.sh env   DIR   # re-print the export lines
#
# Typical use:
#   eval "$(tools/slurm_local.sh start /tmp/slurm-it)"
#   srun --ntasks=2 bash -c 'echo $SLURM_PROCID/$SLURM_NTASKS'
#   tools/slurm_local.sh stop /tmp/slurm-it
#
# Everything (config, munge key + socket, spool, state, logs, pid files)
# lives under DIR, so it never touches /etc/slurm, /etc/munge or
# /run/munge, and two clusters with different DIRs do not collide (each gets
# its own free TCP port pair).  Progress messages go to stderr; only the
# export lines go to stdout.
#
# Needs the Debian 12 packages: slurmctld slurmd slurm-client munge
# (apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge).
#
# Tunables (environment):
#   SLURM_LOCAL_CPUS     CPUs advertised for the node (default max(nproc, 2))
#   SLURM_LOCAL_TIMEOUT  seconds to wait for the node to become idle (default 30)
#   SLURM_LOCAL_PORT     first port to try for slurmctld (slurmd uses +1);
#                        default derived from DIR, then the next free pair.
set -euo pipefail

PROG=$(basename "$0")

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

usage() {
  cat >&2 <<EOF
usage: $PROG start DIR | stop DIR | env DIR
  start DIR  create DIR, start munged, slurmctld and slurmd using only DIR,
             wait for the node to be idle, print 'export ...' lines
  stop DIR   stop the daemons started by 'start DIR' (no error if gone)
  env DIR    print the 'export ...' lines for DIR again
EOF
  exit 2
}

# ---------------------------------------------------------------- helpers

abspath() {
  local d=$1
  mkdir -p "$d"
  (cd "$d" && pwd -P)
}

# show_log NAME FILE: tail of a log file on stderr
show_log() {
  local name=$1 file=$2
  if [[ -s $file ]]; then
    echo "----- last 30 lines of $name log ($file) -----" >&2
    tail -n 30 "$file" >&2
    echo "----- end of $name log -----" >&2
  else
    echo "($name log $file is empty or missing)" >&2
  fi
}

# pid_alive_in_dir PIDFILE: print the pid if the pid file names a live
# process whose command line mentions $DIR (guards against recycled pids).
pid_alive_in_dir() {
  local pidfile=$1 pid
  [[ -s $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [[ -n $pid ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r /proc/$pid/cmdline ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DIR" || return 1
  fi
  echo "$pid"
}

# stop_daemons NAME... : SIGTERM every named daemon of DIR at once (munged
# alone needs ~2 s to exit), wait up to 10 s, then SIGKILL the stragglers.
stop_daemons() {
  local name pid i alive
  local -a names=() pids=()
  for name in "$@"; do
    if pid=$(pid_alive_in_dir "$DIR/run/$name.pid"); then
      kill -TERM "$pid" 2>/dev/null || true
      names+=("$name")
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < 100; i++)); do
    alive=0
    for pid in ${pids[@]+"${pids[@]}"}; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    ((alive)) || break
    sleep 0.1
  done
  for ((i = 0; i < ${#pids[@]}; i++)); do
    if kill -0 "${pids[i]}" 2>/dev/null; then
      log "${names[i]} (pid ${pids[i]}) did not exit after SIGTERM; sending SIGKILL"
      kill -KILL "${pids[i]}" 2>/dev/null || true
    fi
    log "stopped ${names[i]} (pid ${pids[i]})"
  done
  for name in "$@"; do rm -f "$DIR/run/$name.pid"; done
}

# port_in_use PORT: true if something accepts TCP connections on it
port_in_use() {
  local p=$1
  if command -v ss >/dev/null 2>&1; then
    ss -Htln "sport = :$p" 2>/dev/null | grep -q . && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

pick_ports() {
  local base p n
  if [[ -n ${SLURM_LOCAL_PORT:-} ]]; then
    base=$SLURM_LOCAL_PORT
  else
    # deterministic per DIR, in [20000, 29998], even
    base=$(( ( $(printf '%s' "$DIR" | cksum | cut -d' ' -f1) % 5000 ) * 2 + 20000 ))
  fi
  p=$base
  for ((n = 0; n < 200; n++)); do
    if ! port_in_use "$p" && ! port_in_use $((p + 1)); then
      CTLD_PORT=$p
      SLURMD_PORT=$((p + 1))
      return 0
    fi
    p=$((p + 2))
    ((p > 60000)) && p=20000
  done
  die "could not find a free TCP port pair starting at $base"
}

print_env() {
  [[ -f $DIR/etc/slurm.conf ]] || die "$DIR/etc/slurm.conf not found (did 'start $DIR' run?)"
  # SLURM_CONF is all that clients (srun, sbatch, sinfo, ...) need: the munge
  # socket path travels in slurm.conf (AuthInfo=socket=...).  The munge CLI
  # has no env var for it: use 'munge -S DIR/munge/munge.socket'.
  printf 'export SLURM_CONF=%q\n' "$DIR/etc/slurm.conf"
}

# ---------------------------------------------------------------- stop

do_stop() {
  [[ -d $DIR ]] || { log "$DIR does not exist; nothing to stop"; return 0; }
  # Cancel whatever is still queued/running so no slurmstepd is left behind.
  if [[ -f $DIR/etc/slurm.conf ]] && pid_alive_in_dir "$DIR/run/slurmctld.pid" >/dev/null; then
    local jobs
    jobs=$(SLURM_CONF=$DIR/etc/slurm.conf timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      log "cancelling jobs: ${jobs//$'\n'/ }"
      # shellcheck disable=SC2086
      SLURM_CONF=$DIR/etc/slurm.conf timeout 10 scancel $jobs 2>/dev/null || true
      sleep 1
    fi
  fi
  stop_daemons slurmd slurmctld munged
  rm -f "$DIR/munge/munge.socket" "$DIR/munge/munge.socket.lock"
  return 0
}

# ---------------------------------------------------------------- start

write_conf() {
  local user=$1 cpus=$2 node=$3
  cat >"$DIR/etc/slurm.conf" <<EOF
# Generated by $PROG for a private single-node test cluster. Do not edit.
ClusterName=local$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$user
SlurmdUser=$user

AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket

StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/etc/plugstack.conf

# Containers: no cgroups, no task affinity.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true

SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Trust the CPU count below even if the box has fewer cores.
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=60
SlurmctldTimeout=60
InactiveLimit=0
KillWait=5
# sbatch --wait sleeps 2 s, then multiplies the sleep by 4 while it is
# < MinJobAge/2; MinJobAge=5 keeps it polling every 2 s (finished jobs stay
# visible to squeue/scontrol for ~5 s).
MinJobAge=5
Waittime=0

NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  : >"$DIR/etc/plugstack.conf"
}

# wait_for_file_or_death NAME PIDFILE LOG SECONDS
wait_pidfile() {
  local name=$1 pidfile=$2 logf=$3 secs=$4 i
  for ((i = 0; i < secs * 10; i++)); do
    if pid_alive_in_dir "$pidfile" >/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$PROG: error: $name did not start (no live pid in $pidfile after ${secs}s)" >&2
  show_log "$name" "$logf"
  do_stop >/dev/null 2>&1 || true
  exit 1
}

do_start() {
  local t0 user cpus node timeout state i
  t0=$(date +%s.%N)

  for b in munged mungekey slurmctld slurmd sinfo srun scontrol; do
    command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] ||
      die "'$b' not found; install: apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"
  done
  export PATH=$PATH:/usr/sbin:/sbin

  [[ $DIR != *[[:space:]]* ]] || die "DIR must not contain whitespace ($DIR): slurm.conf cannot quote paths"
  # unix socket paths are limited to 107 bytes
  if (( ${#DIR} + 20 > 107 )); then
    die "DIR path too long for the munge unix socket ($DIR); use a shorter path"
  fi

  user=$(id -un)
  if [[ $(id -u) -ne 0 ]]; then
    log "warning: not running as root; slurmd can then only run jobs as $user (best effort)"
  fi

  # Stop anything left over from an earlier 'start DIR' and wipe old state.
  do_stop 2>/dev/null || true
  rm -rf "${DIR:?}/state" "${DIR:?}/spool" "${DIR:?}/log" "${DIR:?}/run" "${DIR:?}/etc" "${DIR:?}/munge"
  mkdir -p "$DIR/state" "$DIR/spool/slurmd" "$DIR/log" "$DIR/run" "$DIR/etc"
  mkdir -m 0755 "$DIR/munge"   # munged wants it not group/world-writable
  chmod 0755 "$DIR" "$DIR/state" "$DIR/spool" "$DIR/spool/slurmd" "$DIR/log" "$DIR/run" "$DIR/etc"

  node=$(hostname -s 2>/dev/null || true)
  [[ -n $node ]] || node=localhost
  cpus=${SLURM_LOCAL_CPUS:-$(nproc)}
  ((cpus >= 2)) || cpus=2
  timeout=${SLURM_LOCAL_TIMEOUT:-30}
  pick_ports
  write_conf "$user" "$cpus" "$node"

  # ---- munged
  mungekey --create --bits=1024 --keyfile="$DIR/munge/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=128 count=1 status=none
  chmod 0600 "$DIR/munge/munge.key"
  # --force: proceed even if an ancestor of DIR is group/world-writable
  # (munged is picky about that) and remove a stale socket.
  munged --force \
    --key-file="$DIR/munge/munge.key" \
    --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed" \
    >>"$DIR/log/munged.log" 2>&1 || {
      echo "$PROG: error: munged failed to start" >&2
      show_log munged "$DIR/log/munged.log"
      do_stop >/dev/null 2>&1 || true
      exit 1
    }
  wait_pidfile munged "$DIR/run/munged.pid" "$DIR/log/munged.log" 10
  for ((i = 0; i < 50; i++)); do [[ -S $DIR/munge/munge.socket ]] && break; sleep 0.1; done
  if ! munge -n -S "$DIR/munge/munge.socket" | unmunge -S "$DIR/munge/munge.socket" >/dev/null 2>&1; then
    echo "$PROG: error: munged is running but munge/unmunge round trip failed" >&2
    show_log munged "$DIR/log/munged.log"
    do_stop >/dev/null 2>&1 || true
    exit 1
  fi

  export SLURM_CONF=$DIR/etc/slurm.conf

  # ---- slurmctld (-c: start with clean state, -i: ignore bad state files)
  slurmctld -c -i -f "$SLURM_CONF" >>"$DIR/log/slurmctld.stderr" 2>&1 || {
    echo "$PROG: error: slurmctld failed to start" >&2
    show_log slurmctld "$DIR/log/slurmctld.log"
    show_log "slurmctld stderr" "$DIR/log/slurmctld.stderr"
    do_stop >/dev/null 2>&1 || true
    exit 1
  }
  wait_pidfile slurmctld "$DIR/run/slurmctld.pid" "$DIR/log/slurmctld.log" 15

  # ---- slurmd
  slurmd -N "$node" -f "$SLURM_CONF" >>"$DIR/log/slurmd.stderr" 2>&1 || {
    echo "$PROG: error: slurmd failed to start" >&2
    show_log slurmd "$DIR/log/slurmd.log"
    show_log "slurmd stderr" "$DIR/log/slurmd.stderr"
    do_stop >/dev/null 2>&1 || true
    exit 1
  }
  wait_pidfile slurmd "$DIR/run/slurmd.pid" "$DIR/log/slurmd.log" 15

  # ---- wait for the node to be idle
  state=
  for ((i = 0; i < timeout * 5; i++)); do
    state=$(timeout 5 sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n1 || true)
    [[ $state == idle ]] && break
    if ! pid_alive_in_dir "$DIR/run/slurmctld.pid" >/dev/null; then
      echo "$PROG: error: slurmctld died during startup" >&2
      show_log slurmctld "$DIR/log/slurmctld.log"
      do_stop >/dev/null 2>&1 || true
      exit 1
    fi
    if ! pid_alive_in_dir "$DIR/run/slurmd.pid" >/dev/null; then
      echo "$PROG: error: slurmd died during startup" >&2
      show_log slurmd "$DIR/log/slurmd.log"
      do_stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 0.2
  done
  if [[ $state != idle ]]; then
    echo "$PROG: error: node '$node' not idle after ${timeout}s (state: '${state:-unknown}')" >&2
    timeout 5 scontrol show node "$node" >&2 2>/dev/null || true
    show_log slurmctld "$DIR/log/slurmctld.log"
    show_log slurmd "$DIR/log/slurmd.log"
    do_stop >/dev/null 2>&1 || true
    exit 1
  fi

  log "cluster up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s:" \
    "node $node, CPUs=$cpus, ports $CTLD_PORT/$SLURMD_PORT, logs in $DIR/log"
  print_env
}

# ---------------------------------------------------------------- main

[[ $# -eq 2 ]] || usage
cmd=$1
[[ -n $2 ]] || usage
case $cmd in
  start)
    DIR=$(abspath "$2")
    do_start
    ;;
  stop)
    if [[ -d $2 ]]; then DIR=$(cd "$2" && pwd -P); else DIR=$2; fi
    do_stop
    ;;
  env)
    DIR=$(cd "$2" 2>/dev/null && pwd -P) || die "$2 does not exist"
    print_env
    ;;
  *) usage ;;
esac

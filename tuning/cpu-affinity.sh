#!/usr/bin/env bash
# Pins a running quiclb to chosen CPU cores. quiclb is one process: the primary thread owns the sockets
# and each shard is a worker thread named quiclb-shard-N, so every thread in /proc/PID/task is pinned.
#
#   tuning/cpu-affinity.sh [--check] [--pid PID]
#                        print the CPU list of every thread (default; no root needed for your own process)
#   tuning/cpu-affinity.sh --cores LIST [--spread] [--pid PID]
#                        pin all threads to LIST (e.g. 2-7 or 0,2,4) with taskset -a; with --spread each
#                        quiclb-shard-N thread then gets a core of its own, LIST[N mod count]
#
# Without --pid the process is found with pgrep -f 'quiclb.js start'. Threads started later (a shard that
# is restarted) inherit the primary's affinity, i.e. all of LIST, so run --spread again after a restart;
# under systemd, CPUAffinity= in the unit pins everything from the start (see tuning/README.md).
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "cpu-affinity.sh: $*" >&2
  exit 2
}

find_pid() {
  local pids
  pids="$(pgrep -f 'quiclb.js start' || true)"
  [[ -n "$pids" ]] || die "no running quiclb found (pgrep -f 'quiclb.js start'); pass --pid PID"
  if [[ "$(wc -l <<<"$pids")" -gt 1 ]]; then
    die "several quiclb processes match: $(tr '\n' ' ' <<<"$pids")- pass --pid PID"
  fi
  echo "$pids"
}

# Expands "0-2,5" into "0 1 2 5".
expand_list() {
  local part lo hi c parts out=()
  IFS=',' read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ "$part" == *-* ]]; then
      lo="${part%-*}"
      hi="${part#*-}"
      ((lo <= hi)) || die "bad range $part in --cores"
      for ((c = lo; c <= hi; c++)); do out+=("$c"); done
    else
      out+=("$part")
    fi
  done
  echo "${out[@]}"
}

check() {
  local pid="$1" task tid comm cpus
  [[ -d "/proc/$pid/task" ]] || die "no process $pid"
  printf 'pid %s: %s\n' "$pid" "$(tr '\0\n' '  ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
  printf '%-8s %-18s %s\n' TID THREAD CPUS
  for task in "/proc/$pid/task"/*; do
    tid="${task##*/}"
    # A thread may exit between the listing and the reads.
    comm="$(cat "$task/comm" 2>/dev/null)" || continue
    cpus="$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$task/status" 2>/dev/null)" || continue
    printf '%-8s %-18s %s\n' "$tid" "$comm" "$cpus"
  done
}

pin() {
  local pid="$1" list="$2" spread="$3" core_ids task comm n
  command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) is not installed"
  taskset -a -p -c "$list" "$pid" >/dev/null || die "taskset refused $list for pid $pid (cores online: $(cat /sys/devices/system/cpu/online 2>/dev/null || echo '?'))"
  echo "pinned every thread of pid $pid to cores $list"
  if [[ "$spread" == yes ]]; then
    read -ra core_ids <<<"$(expand_list "$list")"
    for task in "/proc/$pid/task"/*; do
      comm="$(cat "$task/comm" 2>/dev/null)" || continue
      [[ "$comm" =~ ^quiclb-shard-([0-9]+)$ ]] || continue
      n="${BASH_REMATCH[1]}"
      taskset -p -c "${core_ids[n % ${#core_ids[@]}]}" "${task##*/}" >/dev/null
      echo "pinned $comm (tid ${task##*/}) to core ${core_ids[n % ${#core_ids[@]}]}"
    done
  fi
}

main() {
  local pid="" cores="" spread=no mode=check
  while (($# > 0)); do
    case "$1" in
      --check) mode=check ;;
      --pid)
        (($# >= 2)) || die "--pid needs a PID"
        [[ "$2" =~ ^[0-9]+$ ]] || die "--pid: expected a number, got '$2'"
        pid="$2"
        shift
        ;;
      --cores)
        (($# >= 2)) || die "--cores needs a LIST such as 2-7"
        [[ "$2" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die "--cores: expected a list such as 2-7 or 0,2,4, got '$2'"
        cores="$2"
        mode=pin
        shift
        ;;
      --spread) spread=yes ;;
      -h | --help)
        usage
        return 0
        ;;
      *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
  done
  [[ "$spread" == no || -n "$cores" ]] || die "--spread needs --cores LIST"
  [[ -n "$pid" ]] || pid="$(find_pid)"
  if [[ "$mode" == pin ]]; then
    pin "$pid" "$cores" "$spread"
  fi
  check "$pid"
}

main "$@"

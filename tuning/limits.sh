#!/usr/bin/env bash
# Open-file (nofile) limits for quiclb. Every client TCP connection and every backend connection uses a
# file descriptor, so the common default soft limit of 1024 caps quiclb at a few hundred clients.
#
#   tuning/limits.sh [--check] [--pid PID]
#                        report the soft/hard limit of this shell (and of process PID), the kernel cap
#                        fs.nr_open, and what systemd's LimitNOFILE should be (default; no root needed)
#                        exit 0 when every limit shown is at least 65536, 1 otherwise
#   sudo tuning/limits.sh --apply [--out FILE] [--pid PID]
#                        install tuning/limits.conf as /etc/security/limits.d/60-quiclb.conf (login
#                        sessions; log in again afterwards) and, with --pid, raise a running process now
#                        with prlimit
set -euo pipefail

MIN_NOFILE=65536
WANT_NOFILE=1048576
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIMITS_FILE="/etc/security/limits.d/60-quiclb.conf"

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "limits.sh: $*" >&2
  exit 2
}

# "unlimited" counts as enough.
enough() {
  [[ "$1" == unlimited ]] || (($1 >= MIN_NOFILE))
}

status_of() {
  if enough "$1"; then echo OK; else echo LOW; fi
}

nr_open() {
  cat /proc/sys/fs/nr_open 2>/dev/null || echo "$WANT_NOFILE"
}

# Soft and hard "Max open files" of process $1, as "SOFT HARD".
pid_nofile() {
  local line fields
  line="$(grep '^Max open files' "/proc/$1/limits" 2>/dev/null)" || return 1
  # "Max open files   1024   4096   files"
  read -ra fields <<<"$line"
  echo "${fields[3]} ${fields[4]}"
}

check() {
  local pid="$1" low=0 soft hard psoft phard comm limits
  soft="$(ulimit -Sn)"
  hard="$(ulimit -Hn)"
  printf '%-6s %-34s %-12s %s\n' STATUS LIMIT CURRENT RECOMMENDED
  printf '%-6s %-34s %-12s %s\n' "$(status_of "$soft")" "nofile soft (this shell)" "$soft" ">= $MIN_NOFILE"
  enough "$soft" || low=$((low + 1))
  printf '%-6s %-34s %-12s %s\n' "$(status_of "$hard")" "nofile hard (this shell)" "$hard" ">= $MIN_NOFILE"
  enough "$hard" || low=$((low + 1))
  if [[ -n "$pid" ]]; then
    limits="$(pid_nofile "$pid")" || die "no process $pid (or /proc/$pid/limits unreadable)"
    read -r psoft phard <<<"$limits"
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || echo '?')"
    printf '%-6s %-34s %-12s %s\n' "$(status_of "$psoft")" "nofile soft (pid $pid $comm)" "$psoft" ">= $MIN_NOFILE"
    enough "$psoft" || low=$((low + 1))
    printf '%-6s %-34s %-12s %s\n' "$(status_of "$phard")" "nofile hard (pid $pid $comm)" "$phard" ">= $MIN_NOFILE"
    enough "$phard" || low=$((low + 1))
  fi
  printf '%-6s %-34s %-12s %s\n' "info" "fs.nr_open (kernel cap per process)" "$(nr_open)" "LimitNOFILE may not exceed it"
  echo "systemd: the unit should say LimitNOFILE=$WANT_NOFILE (tuning/quiclb.service does); services ignore limits.d."
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    local unit
    unit="$(timeout 5 systemctl show -p LimitNOFILE --value quiclb.service 2>/dev/null || true)"
    [[ -z "$unit" ]] || echo "systemd: quiclb.service has LimitNOFILE=$unit"
  fi
  if ((low > 0)); then
    echo "$low limit(s) below $MIN_NOFILE. For login sessions: sudo $0 --apply (then log in again);"
    echo "for this shell only, up to the hard limit: ulimit -n $MIN_NOFILE; for a running quiclb: sudo $0 --apply --pid PID"
    return 1
  fi
  echo "All limits at or above $MIN_NOFILE."
}

apply() {
  local out="$1" pid="$2" cap want
  if ! (install -m 0644 "$SCRIPT_DIR/limits.conf" "$out") 2>/dev/null; then
    die "cannot write $out (needs root: sudo $0 --apply)"
  fi
  echo "installed $out (applies to new login sessions of the quiclb user; log in again)"
  if [[ -n "$pid" ]]; then
    cap="$(nr_open)"
    want=$((WANT_NOFILE < cap ? WANT_NOFILE : cap))
    command -v prlimit >/dev/null 2>&1 || die "prlimit (util-linux) is needed for --pid"
    if prlimit --pid "$pid" --nofile="$want:$want" 2>/dev/null; then
      echo "raised pid $pid to nofile $want:$want"
    else
      # Raising a hard limit needs CAP_SYS_RESOURCE (missing in many containers); the soft one may
      # still go up to the current hard limit.
      local limits phard
      limits="$(pid_nofile "$pid")" || die "no process $pid"
      phard="${limits#* }"
      prlimit --pid "$pid" --nofile="$phard:$phard" || die "prlimit refused for pid $pid"
      echo "raised pid $pid soft nofile to its hard limit $phard (raising the hard limit to $want needs CAP_SYS_RESOURCE)"
    fi
  fi
  echo "Services started by systemd take LimitNOFILE=$WANT_NOFILE from their unit (see tuning/quiclb.service)."
}

main() {
  local mode=check pid="" out="$LIMITS_FILE"
  while (($# > 0)); do
    case "$1" in
      --check) mode=check ;;
      --apply) mode=apply ;;
      --pid)
        (($# >= 2)) || die "--pid needs a PID"
        [[ "$2" =~ ^[0-9]+$ ]] || die "--pid: expected a number, got '$2'"
        pid="$2"
        shift
        ;;
      --out)
        (($# >= 2)) || die "--out needs a FILE"
        out="$2"
        shift
        ;;
      -h | --help)
        usage
        return 0
        ;;
      *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
  done
  case "$mode" in
    check) check "$pid" ;;
    apply) apply "$out" "$pid" ;;
  esac
}

main "$@"

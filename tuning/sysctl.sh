#!/usr/bin/env bash
# Kernel settings for a quiclb host: UDP socket buffers for QUIC, listen and packet backlogs, the
# ephemeral port range for backend connections, and the system-wide file limit.
#
#   tuning/sysctl.sh [--check]          report current vs recommended (default; no root needed, changes nothing)
#                                       exit 0 when every setting is at or above the recommendation, 1 otherwise
#   sudo tuning/sysctl.sh --apply       raise the settings that are below, now (sysctl -w); never lowers one
#   sudo tuning/sysctl.sh --persist [--out FILE]
#                                       write them to /etc/sysctl.d/60-quiclb.conf so they survive a reboot
#
# QUICLB_PROC_SYS (default /proc/sys) points the script at another tree; the tests use it to exercise
# --apply and --persist without touching the host.
set -euo pipefail

PROC_SYS="${QUICLB_PROC_SYS:-/proc/sys}"
PERSIST_FILE="/etc/sysctl.d/60-quiclb.conf"

# name|recommended|why. Every one is a minimum, except ip_local_port_range (a "low high" range that
# should be at least as wide as recommended).
#  - rmem_max/wmem_max: quic-go's and Cloudflare's QUIC guides ask for >= 2.5 MB; quic-go recommends
#    7500000. quiclb asks for quic.udpBufferSize (4 MiB by default) and the kernel caps the request here.
#  - rmem_default/wmem_default: used by sockets that do not ask (other QUIC software, DNS); 2.5 MB is the
#    guides' floor. This is a ceiling per socket, not memory taken up front.
#  - somaxconn: quiclb listens with a backlog of 4096 and the kernel truncates it to this.
#  - netdev_max_backlog: packets queued per CPU between the NIC and the stack; 1000 drops UDP bursts.
#  - tcp_max_syn_backlog: half-open connections kept during a connection surge.
#  - ip_local_port_range: source ports for connections to backends; 10240 keeps common service ports free.
#  - fs.file-max: system-wide open files; the per-process limit is tuning/limits.sh's job.
SETTINGS=(
  "net.core.rmem_max|7500000|UDP receive buffer cap (QUIC)"
  "net.core.wmem_max|7500000|UDP send buffer cap (QUIC)"
  "net.core.rmem_default|2500000|default socket receive buffer"
  "net.core.wmem_default|2500000|default socket send buffer"
  "net.core.somaxconn|4096|listen backlog cap"
  "net.core.netdev_max_backlog|16384|per-CPU input packet queue"
  "net.ipv4.tcp_max_syn_backlog|8192|half-open TCP connections"
  "net.ipv4.ip_local_port_range|10240 65535|ephemeral ports for backend connections"
  "fs.file-max|1048576|system-wide open files"
)

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "sysctl.sh: $*" >&2
  exit 2
}

proc_path() {
  printf '%s/%s' "$PROC_SYS" "${1//./\/}"
}

# Prints the current value with whitespace squeezed ("32768 60999"), or nothing when unavailable.
read_value() {
  local file
  file="$(proc_path "$1")"
  [[ -r "$file" ]] || return 0
  tr -s ' \t' '  ' <"$file" | tr -d '\n'
}

# Prints "ok" or "low" for current value $2 against recommendation $3 of setting $1.
compare() {
  local name="$1" cur="$2" rec="$3"
  if [[ "$name" == "net.ipv4.ip_local_port_range" ]]; then
    local clo chi rlo rhi
    read -r clo chi <<<"$cur"
    read -r rlo rhi <<<"$rec"
    if ((chi - clo >= rhi - rlo)); then echo ok; else echo low; fi
  elif ((cur >= rec)); then
    echo ok
  else
    echo low
  fi
}

# The value to set: the recommendation, or the current value when it is already higher (never lower one).
target_value() {
  local name="$1" cur="$2" rec="$3"
  if [[ -n "$cur" && "$(compare "$name" "$cur" "$rec")" == ok ]]; then echo "$cur"; else echo "$rec"; fi
}

check() {
  local low=0 missing=0 entry name rec why cur state
  printf '%-6s %-30s %-16s %-16s %s\n' STATUS SETTING CURRENT RECOMMENDED WHAT
  for entry in "${SETTINGS[@]}"; do
    IFS='|' read -r name rec why <<<"$entry"
    cur="$(read_value "$name")"
    if [[ -z "$cur" ]]; then
      state="n/a"
      cur="unavailable"
      missing=$((missing + 1))
    elif [[ "$(compare "$name" "$cur" "$rec")" == ok ]]; then
      state="OK"
    else
      state="LOW"
      low=$((low + 1))
    fi
    if [[ "$name" == "net.ipv4.ip_local_port_range" ]]; then
      printf '%-6s %-30s %-16s %-16s %s\n' "$state" "$name" "$cur" "$rec" "$why (width at least)"
    else
      printf '%-6s %-30s %-16s %-16s %s\n' "$state" "$name" "$cur" ">= $rec" "$why"
    fi
  done
  if ((missing > 0)); then
    echo "$missing setting(s) are not visible here (a container without its own network namespace sysctls?)."
  fi
  if ((low > 0)); then
    echo "$low setting(s) below the recommendation. Raise them now: sudo $0 --apply"
    echo "Make it permanent: sudo $0 --persist   (writes $PERSIST_FILE)"
    return 1
  fi
  if ((missing > 0)); then
    echo "All visible settings at or above the recommendation."
  else
    echo "All settings at or above the recommendation."
  fi
}

# Returns non-zero when the kernel refuses (e.g. /proc/sys read-only inside a container).
write_value() {
  local name="$1" value="$2"
  if [[ "$PROC_SYS" == /proc/sys ]] && command -v sysctl >/dev/null 2>&1; then
    sysctl -q -w "$name=$value" >/dev/null
  else
    (printf '%s\n' "$value" >"$(proc_path "$name")") 2>/dev/null
  fi
}

apply() {
  if [[ "$PROC_SYS" == /proc/sys && "$(id -u)" -ne 0 ]]; then
    die "--apply needs root: sudo $0 --apply   (run $0 --check to see what would change)"
  fi
  local changed=0 failed=0 entry name rec why cur
  for entry in "${SETTINGS[@]}"; do
    IFS='|' read -r name rec why <<<"$entry"
    cur="$(read_value "$name")"
    if [[ -z "$cur" ]]; then
      echo "skip   $name: not available here"
      continue
    fi
    if [[ "$(compare "$name" "$cur" "$rec")" == ok ]]; then
      continue
    fi
    if write_value "$name" "$rec"; then
      echo "set    $name: $cur -> $rec"
      changed=$((changed + 1))
    else
      echo "FAILED $name: $cur -> $rec refused (read-only /proc/sys in a container? set it on the host)"
      failed=$((failed + 1))
    fi
  done
  echo "$changed setting(s) raised; they last until reboot."
  ((failed == 0)) || return 1
  echo "Make it permanent: sudo $0 --persist   (writes $PERSIST_FILE, loaded at boot by systemd-sysctl)"
}

persist() {
  local out="$1" entry name rec why cur tmp
  tmp="$(mktemp "${out}.XXXXXX" 2>/dev/null)" || die "cannot write next to $out (needs root: sudo $0 --persist)"
  {
    echo "# quiclb host tuning, written by tuning/sysctl.sh --persist; see tuning/README.md."
    echo "# Values already higher on this host when it was written are kept, never lowered."
    for entry in "${SETTINGS[@]}"; do
      IFS='|' read -r name rec why <<<"$entry"
      cur="$(read_value "$name")"
      echo "# $why"
      echo "$name = $(target_value "$name" "$cur" "$rec")"
    done
  } >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$out"
  echo "wrote $out"
  echo "Load it now without a reboot: sudo sysctl -p $out"
}

main() {
  local mode=check out="$PERSIST_FILE"
  while (($# > 0)); do
    case "$1" in
      --check) mode=check ;;
      --apply) mode=apply ;;
      --persist) mode=persist ;;
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
    check) check ;;
    apply) apply ;;
    persist) persist "$out" ;;
  esac
}

main "$@"

#!/usr/bin/env bash
# Installs what `npm run bench` needs from Debian: nginx (the backends, and a peer), HAProxy and Caddy (peers;
# Caddy is the HTTP/3 peer), and the load generators wrk (HTTP/1.1) and h2load (HTTP/2, fixed rates; Debian
# package nghttp2-client). Skips apt when all are present. Run as root or with sudo.
set -euo pipefail

need=()
services=()
for pair in nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk h2load:nghttp2-client; do
  bin=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    need+=("$pkg")
    case "$bin" in nginx | haproxy | caddy) services+=("$bin") ;; esac
  fi
done
if [ "${#need[@]}" -eq 0 ]; then
  echo "install-peers: nginx, haproxy, caddy, wrk and h2load are present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-peers: need root or sudo to apt-get install ${need[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
# The packages start system services on port 80/443; the bench runs its own instances, so stop those.
for svc in "${services[@]}"; do
  if command -v systemctl >/dev/null 2>&1; then
    "${sudo_cmd[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
echo "install-peers: installed ${need[*]}"

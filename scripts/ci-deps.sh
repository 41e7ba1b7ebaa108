#!/usr/bin/env bash
# Installs the Debian (12, bookworm) packages quiclb's tests and benchmarks drive: nginx and php-fpm for
# the test backends, curl/h2load/gtlsclient/chromium as real clients, shellcheck for the scripts, and
# caddy/haproxy (the HTTP/3 interop server for the bench client, and the bench's peers).
# Skips apt entirely when every tool is already there, so local runs stay fast.
#
#   scripts/ci-deps.sh            # as root, or a user with sudo
#   QUICLB_SKIP_APT=1 ...         # never touch apt (report what is missing and carry on)
#   QUICLB_EXTRA_PKGS="haproxy"   # more packages to install alongside
#
# The tests start their own nginx/php-fpm with their own configs; Debian's services are neither needed
# nor started by this script (policy-rc.d keeps apt from starting them).
set -euo pipefail

log() { printf '[ci-deps] %s\n' "$*"; }

# Commands the tests run; php-fpm is matched by glob so any PHP minor version will do.
TOOLS=(nginx php curl h2load gtlsclient chromium shellcheck openssl ps pgrep caddy haproxy)

missing_tools() {
  local tool
  for tool in "${TOOLS[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" ]]; then
      printf '%s ' "$tool"
    fi
  done
  if ! compgen -G '/usr/sbin/php-fpm*' >/dev/null; then
    printf 'php-fpm '
  fi
}

missing="$(missing_tools)"
if [[ -z "$missing" && -z "${QUICLB_EXTRA_PKGS:-}" ]]; then
  log "all test tools present; skipping apt"
  exit 0
fi
if [[ "${QUICLB_SKIP_APT:-0}" == "1" ]]; then
  log "QUICLB_SKIP_APT=1; missing tools left missing: ${missing:-none}"
  exit 0
fi
log "missing: ${missing:-none}; installing with apt"

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    log "not root and no sudo: install these packages yourself, or run as root"
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# Keep apt from starting Debian's nginx and php-fpm services (they would take port 80 and are not used).
created_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${SUDO[@]}" chmod 0755 /usr/sbin/policy-rc.d
  created_policy=1
fi
remove_policy() {
  if [[ "$created_policy" == "1" ]]; then
    "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
  fi
}
trap remove_policy EXIT

log "apt-get update"
if ! "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update; then
  log "apt-get update failed; retrying once"
  sleep 5
  "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update
fi

# nginx-light is bookworm's small flavour; later releases dropped it, so fall back to plain nginx.
nginx_pkg=nginx
if apt-cache show nginx-light >/dev/null 2>&1; then
  nginx_pkg=nginx-light
fi

PACKAGES=(
  "$nginx_pkg" php-fpm php-cli
  curl nghttp2-client ngtcp2-client
  chromium fonts-liberation
  shellcheck openssl procps ca-certificates
  caddy haproxy
)
# shellcheck disable=SC2206 # word splitting of the extra list is intended
PACKAGES+=(${QUICLB_EXTRA_PKGS:-})

log "apt-get install ${PACKAGES[*]}"
"${SUDO[@]}" apt-get "${APT_OPTS[@]}" install --no-install-recommends "${PACKAGES[@]}"

missing="$(missing_tools)"
if [[ -n "$missing" ]]; then
  log "still missing after install: $missing"
  exit 1
fi
log "done: $(/usr/sbin/nginx -v 2>&1), $(php -r 'echo "php ", PHP_VERSION;'), $(compgen -G '/usr/sbin/php-fpm*' | head -n1)"

#!/usr/bin/env bash
# Install the Debian packages the test suite and the local stack use, when missing and when root.
# chromium: the agent's browser tests; nginx: the production-path tests; wrk: `make bench`;
# openssl: the TLS test's throwaway certificate.
set -euo pipefail
want=()
command -v chromium >/dev/null || want+=(chromium)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || want+=(nginx-light)
command -v wrk >/dev/null || want+=(wrk)
command -v pkg-config >/dev/null || want+=(pkg-config)
command -v clang >/dev/null || want+=(clang)
command -v openssl >/dev/null || want+=(openssl)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${want[*]}; install them (not root, so not doing it here)" >&2
  exit 1
fi
echo "system-deps: apt-get install ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null
# the Debian nginx package starts a server on :80 when installed; we only want the binary
if command -v systemctl >/dev/null; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi

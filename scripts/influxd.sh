#!/usr/bin/env bash
# Provide a real influxd of the 2.x line and print its absolute path on stdout.
#
# Why this exists: Debian ships only InfluxDB 1.6 and no registry we reach ships an influxd
# binary, so we build v2.x from the Go module proxy once and cache it outside the repository.
#   1. `influxd` on PATH with version >= 2.7  -> use it.
#   2. the cached build for $INFLUXD_VERSION  -> use it.
#   3. otherwise build it (progress on stderr; on failure: the failing step and its log tail).
# Everything except the final path goes to stderr, so `INFLUXD=$(scripts/influxd.sh)` works.
set -euo pipefail

VERSION="${INFLUXD_VERSION:-v2.9.1}"
PKG_CONFIG_VERSION="v0.3.0"
CACHE_ROOT="${ANALYTICS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/analytics-bp}"
DEST="$CACHE_ROOT/influxd-$VERSION/influxd"
LOG_DIR="$CACHE_ROOT/build-logs"
START=$(date +%s)

say() { printf '[influxd %4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

version_ok() {  # $1 = binary; true when it reports 2.x with x >= 7
  local v
  v=$("$1" version 2>/dev/null | sed -n 's/^InfluxDB v\{0,1\}\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p' | head -n1)
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -eq 2 ] && [ "$2" -ge 7 ]
}

if command -v influxd >/dev/null 2>&1 && version_ok "$(command -v influxd)"; then
  command -v influxd
  exit 0
fi
if [ -x "$DEST" ] && version_ok "$DEST"; then
  echo "$DEST"
  exit 0
fi

mkdir -p "$LOG_DIR" "$(dirname "$DEST")"

# run_step NAME CMD...: run with output in a log, a heartbeat every 30 s, and the log tail on failure.
run_step() {
  local name="$1"; shift
  local log="$LOG_DIR/$name.log"
  say "step '$name' started (log: $log)"
  "$@" >"$log" 2>&1 &
  local pid=$! ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2; ticks=$((ticks + 1))
    if [ $((ticks % 15)) -eq 0 ]; then
      say "  '$name' still running; last log line: $(tail -n1 "$log" 2>/dev/null | cut -c1-110)"
    fi
  done
  if ! wait "$pid"; then
    say "FAILED at step '$name'. Last 40 lines of $log:"
    tail -n 40 "$log" >&2
    exit 1
  fi
  say "step '$name' done"
}

install_system_packages() {
  local missing=()
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v clang >/dev/null || missing+=(clang)
  command -v gcc >/dev/null || missing+=(gcc)
  command -v go >/dev/null || missing+=(golang-go)
  command -v cargo >/dev/null || missing+=(cargo)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "missing build tools: ${missing[*]} (not root: install them and retry)"; exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

say "no influxd >= 2.7 on PATH or in cache; building $VERSION (first time: about 10 min on 2 cores; later runs reuse the cache)"
run_step system-packages install_system_packages

WORK="$CACHE_ROOT/build-$VERSION"
mkdir -p "$WORK/wrapper" "$WORK/bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=1
export RUSTUP_TOOLCHAIN=stable RUSTFLAGS="--cap-lints=warn"
export PKG_CONFIG_LOG="$LOG_DIR/pkg-config-shim.log"

# influxdata's shim compiles libflux (Rust) with cargo when cgo asks pkg-config for "flux".
run_step pkg-config-shim env GOBIN="$WORK/bin" go install "github.com/influxdata/pkg-config@$PKG_CONFIG_VERSION"
export PKG_CONFIG="$WORK/bin/pkg-config"

# `go install influxd@v` is refused because influxdb's go.mod has replace lines (no-ops for this
# version); a throwaway module that requires influxdb builds the same command.
cd "$WORK/wrapper"
if [ ! -f go.mod ]; then
  cat > go.mod <<MOD
module influxd-wrapper

go 1.25
MOD
fi
run_step go-get go get "github.com/influxdata/influxdb/v2/cmd/influxd@$VERSION"
run_step go-build go build -v -tags sqlite_foreign_keys,sqlite_json \
  -ldflags "-s -w -X main.version=$VERSION -X main.commit=module-proxy -X main.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -o "$WORK/influxd" \
  github.com/influxdata/influxdb/v2/cmd/influxd

version_ok "$WORK/influxd" || { say "built binary does not report a 2.x >= 2.7 version"; exit 1; }
mv "$WORK/influxd" "$DEST"
say "built $("$DEST" version | head -n1) -> $DEST"
echo "$DEST"

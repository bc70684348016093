#!/usr/bin/env bash
# Ingest side by side: starts InfluxDB 1.x (influxd), VictoriaMetrics single
# node (victoria-metrics) and the example server on free local ports and
# drives the same line-protocol batches at all three with "loadgen bench"
# (400 batches of 5,000 lines × 2 fields, 4 concurrent writers, 100
# merchants × 200 series, timestamps over the last 30 minutes), then the same
# dashboard query. With EVENTS=1 (the default) the burst run also sends the
# same workload to the example server's /v1/events as JSON events (each line
# a page_view event of its page and time, one point where the line makes
# two), a row of its own. Then the sustained run: a fresh server with a
# compressed flush schedule takes the batches over and over at full speed
# while its flushes run; loadgen reports the acknowledged points/s, the
# flushes' share of the time, the cache's peak and the server's peak RSS.
# Prints two Markdown tables (the README's performance section). Everything
# it started is stopped on exit.
#
# Usage: scripts/bench-ingest.sh [loadgen bench flags for the burst run]
# Environment: EVENTS (default 1; 0 leaves /v1/events out), SUSTAIN
# (default 3m; 0 skips the sustained run), PROFILE
# (a file: write there the sustained server's CPU profile from 30 s into
# the run, for 90 s),
# FLUSH_INTERVAL (45s), FLUSH_BUDGET (15s), FLUSH_WRITERS (the sustained
# server's -flush-writers; empty means its default, -1 no bound), VM (victoria-metrics binary,
# default $(go env GOPATH)/bin/victoria-metrics; build it with
# go install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0).
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1}
SUSTAIN=${SUSTAIN:-3m}
PROFILE=${PROFILE:-}
FLUSH_INTERVAL=${FLUSH_INTERVAL:-45s}
FLUSH_BUDGET=${FLUSH_BUDGET:-15s}
FLUSH_WRITERS=${FLUSH_WRITERS:-}
VM=${VM:-$(go env GOPATH)/bin/victoria-metrics}

work=$(mktemp -d "${TMPDIR:-/tmp}/hourglass-bench.XXXXXX")
pids=()
# shellcheck source=scripts/servers.sh
. scripts/servers.sh
trap cleanup EXIT

log() { echo "scripts/bench-ingest.sh: $*" >&2; }

# stop PID: stop one process this script started.
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

log "building the server and loadgen"
go build -o "$work/server" ./examples/server
go build -o "$work/loadgen" ./examples/loadgen

# start_server DIR FLAGS...: start the example server; sets server_url, server_pid.
start_server() {
  local dir=$1; shift
  local port; port=$(free_port)
  "$work/server" -addr "127.0.0.1:$port" -data "$dir" -rate 0 "$@" >"$dir.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  server_url="http://127.0.0.1:$port"
  wait_for server 30 curl -sf "$server_url/readyz" || { cat "$dir.log" >&2; exit 1; }
}

args=(-hourglass "")
[ "$EVENTS" != 0 ] && args+=(-events)
# --- InfluxDB 1.x ------------------------------------------------------------
if command -v influxd >/dev/null; then
  if start_influxd "$work/influx"; then
    influx_pid=$influxd_pid
    args+=(-influx "$influxd_url")
  fi
  pids+=("$influxd_pid")
else
  log "influxd not installed: InfluxDB is left out"
fi

# --- VictoriaMetrics ---------------------------------------------------------
if [ -x "$VM" ]; then
  vport=$(free_port)
  "$VM" -storageDataPath "$work/vm" -httpListenAddr "127.0.0.1:$vport" -loggerLevel ERROR >"$work/vm.log" 2>&1 &
  vm_pid=$!
  pids+=("$vm_pid")
  wait_for victoria-metrics 30 curl -sf "http://127.0.0.1:$vport/health" && args+=(-vm "http://127.0.0.1:$vport")
else
  log "$VM not found: VictoriaMetrics is left out"
fi

# --- burst: the same batches at all three --------------------------------------
start_server "$work/burst"
args[1]=$server_url
log "load average before the burst run: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/loadgen" bench "${args[@]}" -tokens "$work/burst/tokens.json" "$@"
stop "$server_pid"
[ -n "${influx_pid:-}" ] && stop "$influx_pid"
[ -n "${vm_pid:-}" ] && stop "$vm_pid"

# --- sustained: full speed while flushes run -----------------------------------
if [ "$SUSTAIN" != 0 ]; then
  extra=()
  if [ -n "$PROFILE" ]; then
    pport=$(free_port)
    extra=(-pprof "127.0.0.1:$pport")
  fi
  [ -n "$FLUSH_WRITERS" ] && extra+=(-flush-writers "$FLUSH_WRITERS")
  start_server "$work/sustain" -flush-interval "$FLUSH_INTERVAL" -flush-budget "$FLUSH_BUDGET" "${extra[@]}"
  log "load average before the sustained run: $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ -n "$PROFILE" ]; then
    # A CPU profile of the server from 30 s into the run, for 90 s: ingest
    # and flushes together, as a user lives with them.
    ( sleep 30; curl -sf -o "$PROFILE" "http://127.0.0.1:$pport/debug/pprof/profile?seconds=90" \
        && log "CPU profile of the sustained server: $PROFILE (go tool pprof -top $PROFILE)" ) &
    pids+=($!)
  fi
  "$work/loadgen" bench -hourglass "$server_url" -tokens "$work/sustain/tokens.json" \
    -sustain "$SUSTAIN" -flush-interval "$FLUSH_INTERVAL" -pid "$server_pid"
  stop "$server_pid"
fi
log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

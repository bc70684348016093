#!/usr/bin/env bash
# Runs the whole test suite against real servers started on free local ports:
# a private redis-server, InfluxDB 1.x (Debian's influxdb package, installed
# with apt when missing), versitygw (an S3 server, built with go install
# when missing), VictoriaMetrics (go install when missing), Prometheus
# (Debian's package, extracted into a cache directory) and Debian's chromium
# (installed with apt when missing, for the dashboard's browser test);
# RabbitMQ is the machine's (127.0.0.1:5672, guest/guest) unless
# HOURGLASS_AMQP_URL says otherwise. Their addresses reach the tests
# in HOURGLASS_* variables (see internal/servertest). Everything it started
# is stopped on exit.
#
# Usage: scripts/test.sh [go test flags and packages]   (default: -race ./...)
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/hourglass-test.XXXXXX")
pids=()
# shellcheck source=scripts/servers.sh
. scripts/servers.sh
trap cleanup EXIT

log() { echo "scripts/test.sh: $*" >&2; }

# --- Redis -------------------------------------------------------------------
if command -v redis-server >/dev/null; then
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --logfile "$work/redis.log" &
  pids+=($!)
  if wait_for redis 10 redis-cli -p "$port" ping; then
    export HOURGLASS_REDIS_ADDR="127.0.0.1:$port"
    log "redis on $HOURGLASS_REDIS_ADDR"
  fi
else
  log "redis-server not installed: Redis tests will skip (fail under CI=true)"
fi

# --- InfluxDB 1.x ------------------------------------------------------------
if ! command -v influxd >/dev/null; then
  log "installing Debian's influxdb package"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb) >"$work/apt.log" 2>&1 ||
    log "could not install influxdb (see apt output above); InfluxDB tests will skip"
fi
if command -v influxd >/dev/null; then
  start_influxd "$work/influx" || true
  pids+=("$influxd_pid")
  if [ -n "${influxd_url:-}" ]; then
    export HOURGLASS_INFLUX_URL=$influxd_url
    log "influxd on $HOURGLASS_INFLUX_URL"
  fi
fi

# --- versitygw (S3) ----------------------------------------------------------
gobin=$(go env GOPATH)/bin
vgw=$(command -v versitygw || true)
[ -z "$vgw" ] && [ -x "$gobin/versitygw" ] && vgw=$gobin/versitygw
if [ -z "$vgw" ]; then
  log "building versitygw v1.8.0 with go install (about 13 minutes the first time; cached afterwards)"
  if GOFLAGS=-buildvcs=false go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 >"$work/versitygw-build.log" 2>&1; then
    vgw=$gobin/versitygw
  else
    cat "$work/versitygw-build.log" >&2
    log "could not build versitygw: S3 tests will skip (fail under CI=true)"
  fi
fi
if [ -n "$vgw" ]; then
  sport=$(free_port)
  mkdir -p "$work/s3"
  export HOURGLASS_S3_ACCESS_KEY=hourglass HOURGLASS_S3_SECRET_KEY=hourglass-secret-key
  ROOT_ACCESS_KEY=$HOURGLASS_S3_ACCESS_KEY ROOT_SECRET_KEY=$HOURGLASS_S3_SECRET_KEY \
    "$vgw" --port "127.0.0.1:$sport" posix "$work/s3" >"$work/versitygw.log" 2>&1 &
  pids+=($!)
  if wait_for versitygw 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$sport"; then
    export HOURGLASS_S3_ENDPOINT="127.0.0.1:$sport"
    export HOURGLASS_S3_BINARY=$vgw
    log "versitygw on $HOURGLASS_S3_ENDPOINT"
  else
    cat "$work/versitygw.log" >&2
  fi
fi

# --- VictoriaMetrics single node ---------------------------------------------
# Flags: keep everything (-retentionPeriod, -futureRetention: storetest writes
# in 2026 and 2027), exports as long as tsstore/promremote's default read span,
# duplicates of a millisecond merged, no latency offset or response cache.
vm=$(command -v victoria-metrics || true)
[ -z "$vm" ] && [ -x "$gobin/victoria-metrics" ] && vm=$gobin/victoria-metrics
if [ -z "$vm" ]; then
  log "building victoria-metrics v1.151.0 with go install (about 30 s the first time; cached afterwards)"
  if go install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0 >"$work/vm-build.log" 2>&1; then
    vm=$gobin/victoria-metrics
  else
    cat "$work/vm-build.log" >&2
    log "could not build victoria-metrics: its tests will skip (fail under CI=true)"
  fi
fi
if [ -n "$vm" ]; then
  vport=$(free_port)
  "$vm" -httpListenAddr="127.0.0.1:$vport" -storageDataPath="$work/vm" -retentionPeriod=100y \
    -futureRetention=2y -dedup.minScrapeInterval=1ms -search.maxExportDuration=876000h \
    -search.latencyOffset=0 -search.disableCache -loggerLevel=ERROR >"$work/vm.log" 2>&1 &
  pids+=($!)
  if wait_for victoria-metrics 30 curl -sf "http://127.0.0.1:$vport/health"; then
    export HOURGLASS_VM_URL="http://127.0.0.1:$vport"
    log "victoria-metrics on $HOURGLASS_VM_URL"
  else
    cat "$work/vm.log" >&2
  fi
fi

# --- Prometheus 2.42 (Debian's package, extracted, no service) ---------------
# The out-of-order window is far beyond the write-back engine's MaxLate (6
# days) because the tests share one server: storetest writes a year apart,
# and Prometheus measures lateness from its newest sample.
promdir=${XDG_CACHE_HOME:-$HOME/.cache}/hourglass/prometheus
if [ ! -x "$promdir/root/usr/bin/prometheus" ]; then
  log "fetching Debian's prometheus package into $promdir"
  mkdir -p "$promdir"
  (cd "$promdir" && rm -f prometheus_*.deb && apt-get download prometheus && dpkg -x prometheus_*.deb root) >"$work/prom-fetch.log" 2>&1 ||
    { cat "$work/prom-fetch.log" >&2; log "could not fetch prometheus: its tests will skip (fail under CI=true)"; }
fi
if [ -x "$promdir/root/usr/bin/prometheus" ]; then
  export HOURGLASS_PROMETHEUS_BIN=$promdir/root/usr/bin/prometheus
  export HOURGLASS_PROMTOOL_BIN=$promdir/root/usr/bin/promtool
  pport=$(free_port)
  mkdir -p "$work/prometheus"
  cat >"$work/prometheus/prometheus.yml" <<CONF
storage:
  tsdb:
    out_of_order_time_window: 1000d
CONF
  "$HOURGLASS_PROMETHEUS_BIN" --config.file="$work/prometheus/prometheus.yml" \
    --storage.tsdb.path="$work/prometheus/data" --storage.tsdb.retention.time=100y \
    --web.listen-address="127.0.0.1:$pport" --web.enable-remote-write-receiver \
    --log.level=warn >"$work/prometheus/prometheus.log" 2>&1 &
  pids+=($!)
  if wait_for prometheus 30 curl -sf "http://127.0.0.1:$pport/-/ready"; then
    export HOURGLASS_PROMETHEUS_URL="http://127.0.0.1:$pport"
    log "prometheus on $HOURGLASS_PROMETHEUS_URL"
  else
    cat "$work/prometheus/prometheus.log" >&2
  fi
fi

# --- RabbitMQ ----------------------------------------------------------------
export HOURGLASS_AMQP_URL=${HOURGLASS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
if ! bash -c "exec 3<>/dev/tcp/127.0.0.1/5672" 2>/dev/null && command -v rabbitmq-server >/dev/null; then
  log "starting rabbitmq-server"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for rabbitmq 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/5672" || true
fi

# --- Chromium (the dashboard's browser test) -----------------------------------
if [ -z "${HOURGLASS_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  log "installing Debian's chromium package"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >"$work/apt-chromium.log" 2>&1 ||
    { cat "$work/apt-chromium.log" >&2; log "could not install chromium: browser tests will skip (fail under CI=true)"; }
fi
if [ -z "${HOURGLASS_CHROMIUM:-}" ] && command -v chromium >/dev/null; then
  export HOURGLASS_CHROMIUM=$(command -v chromium)
fi
[ -n "${HOURGLASS_CHROMIUM:-}" ] && log "chromium at $HOURGLASS_CHROMIUM"

# --- the tests ---------------------------------------------------------------
if [ $# -eq 0 ]; then set -- -race ./...; fi
log "go test -count=1 -timeout 20m $*"
go test -count=1 -timeout 20m "$@"

# Functions shared by scripts/test.sh and scripts/bench-ingest.sh, which
# source this file: free ports, waiting for a server, starting InfluxDB 1.x,
# and stopping what a script started.

# cleanup stops the processes in the array pids and removes the directory
# $work (a script's EXIT trap).
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

# wait_for NAME SECONDS COMMAND...: run COMMAND until it succeeds.
wait_for() {
  local name=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$0: $name did not come up within ${secs}s" >&2
  return 1
}

# start_influxd DIR: start influxd with its files in DIR on free local
# ports; sets influxd_pid and, once it answers, influxd_url (else prints
# its log and returns 1).
start_influxd() {
  local dir=$1 hport rport
  hport=$(free_port); rport=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rport"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"
[coordinator]
  write-timeout = "30s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$hport"
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
CONF
  influxd run -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
  influxd_pid=$!
  if wait_for influxd 30 curl -sf "http://127.0.0.1:$hport/ping"; then
    influxd_url="http://127.0.0.1:$hport"
  else
    cat "$dir/influxd.log" >&2
    return 1
  fi
}

#!/usr/bin/env bash
# The read path, measured side by side with what the HTTP layer itself can serve.
#
# Starts a release build of the embedded stack (SQLite by default; DATABASE=postgres runs it
# on a private PostgreSQL cluster), gives a customer SERVERS (100) BusyBox servers on an LXC
# node with a snapshot each (deploy/bench_reads.py), then for every list, single-server,
# status and session read of the four dialects runs wrk against the gateway and against a
# bare axum server (crates/gateway/examples/bare.rs) answering the same bytes, and prints
# requests per second, p99 and the ratio. Last, the stack's memory: idle, and its peak under
# the runs.
#
# Settings: DURATION (10s), CONNECTIONS (64), THREADS (2), DATABASE (sqlite | postgres),
# SERVERS (100), SNAPSHOTS (how many of them get a snapshot; all by default).
# Needs root and LXC (the servers are real containers); sends traffic to loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DATABASE=${DATABASE:-sqlite}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nats-server >/dev/null || missing+=(nats-server)
command -v lxc-create >/dev/null || missing+=(lxc)
if [ "$DATABASE" = postgres ] && ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
as_root bash deploy/lxc-net.sh >/dev/null
cargo build --release --locked -q -p stack
cargo build --release --locked -q -p gateway --example bare

data=$(mktemp -d /tmp/vps-reads.XXXXXX)
# Unprivileged guests live below it: their mapped root must be able to pass through.
chmod 711 "$data"
mkdir "$data/bodies" "$data/lxc"
pids=()
pg_stop=
cleanup() {
  # TERM, not INT: a background job of a script ignores SIGINT.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for name in $(ls "$data/lxc" 2>/dev/null); do
    lxc-destroy -P "$data/lxc" -n "$name" -f -s >/dev/null 2>&1 || true
  done
  [ -z "$pg_stop" ] || eval "$pg_stop" >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT

if [ "$DATABASE" = postgres ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  mkdir "$data/pg"
  run_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
  [ "$(id -u)" -eq 0 ] && chown postgres "$data/pg"
  run_pg "$pg_bin/initdb -D $data/pg/data -A trust -U postgres" >/dev/null
  run_pg "$pg_bin/pg_ctl -D $data/pg/data -l $data/pg/log -w -o '-p 15432 -k $data/pg -c listen_addresses=127.0.0.1' start" >/dev/null
  pg_stop="run_pg '$pg_bin/pg_ctl -D $data/pg/data -m fast stop'"
  export VPS_POSTGRES_URL=postgres://postgres@127.0.0.1:15432/postgres
fi

port=15000
export VPS_DATA_DIR=$data/stack VPS_GATEWAY_PORT=$port VPS_NATS_PORT=14222 \
  VPS_IDENTITY_PORT=15051 VPS_SERVER_PORT=15052 VPS_SNAPSHOT_PORT=15053 VPS_NODE_PORT=15054 \
  VPS_MONITOR_PORT=15055 VPS_NOTIFY_PORT=15056 VPS_METRICS_PORT=15090 RUST_LOG=${RUST_LOG:-warn}
mkdir -p "$data/stack"
"${CARGO_TARGET_DIR:-target}/release/vps-stack" >"$data/stack.out" 2>"$data/stack.err" &
stack=$!
pids+=("$stack")
for _ in $(seq 300); do grep -q "Stop:" "$data/stack.out" 2>/dev/null && break; sleep 0.2; done
grep -q "Stop:" "$data/stack.out" || { cat "$data/stack.err" >&2; exit 1; }
gw=http://127.0.0.1:$port
echo "== setting up ($DATABASE): a customer with ${SERVERS:-100} servers on LXC, ${SNAPSHOTS:-all} with a snapshot"
python3 deploy/bench_reads.py "$gw" "$(cat "$data/stack/admin-password")" "$data/lxc" "$data/bodies"

"${CARGO_TARGET_DIR:-target}/release/examples/bare" 127.0.0.1:15900 "$data/bodies" &
pids+=("$!")
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:15900/auth-me" && break; sleep 0.1; done

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$stack/status"; }
sleep 5
idle_kb=$(rss_kb)

# wrk's Requests/sec and p99 (in ms) for a run: "rps p99".
measure() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency "$@" >"$data/wrk.out" 2>&1 || true
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ {
      v = $2; unit = v; gsub(/[0-9.]/, "", unit); sub(/[a-z]+$/, "", v)
      if (unit == "us") v = v / 1000; else if (unit == "s") v = v * 1000; else if (unit == "m") v = v * 60000
      p99 = v
    }
    /Non-2xx/ { errors = $NF }
    END { printf "%d %.1f %s\n", rps, p99, (errors == "" ? 0 : errors) }
  ' "$data/wrk.out"
}

printf '\n== reads at %s connections, %s threads, %s each (%s)\n' "$CONNECTIONS" "$THREADS" "$DURATION" "$DATABASE"
printf '%-24s %8s %10s %10s %10s %9s %7s\n' route bytes 'req/s' 'p99 ms' 'bare req/s' 'bare p99' ratio
while IFS=$'\t' read -r name method path headers body; do
  {
    echo "wrk.method = \"$method\""
    echo "$headers" | jq -r 'to_entries[] | "wrk.headers[\"\(.key)\"] = \"\(.value)\""'
    if [ -n "$body" ]; then
      echo 'wrk.headers["content-type"] = "application/json"'
      printf 'wrk.body = %s\n' "$(jq -Rn --arg b "$body" '$b')"
    fi
  } >"$data/$name.lua"
  read -r rps p99 errors < <(measure -s "$data/$name.lua" "$gw$path")
  read -r bare_rps bare_p99 _ < <(measure "http://127.0.0.1:15900/$name")
  ratio=$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  note=
  [ "$errors" = 0 ] || note=" ($errors non-2xx)"
  printf '%-24s %8d %10d %10.1f %10d %9.1f %7s%s\n' "$name" "$(stat -c %s "$data/bodies/$name")" \
    "$rps" "$p99" "$bare_rps" "$bare_p99" "$ratio" "$note"
done <"$data/bodies/routes.tsv"

peak_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$stack/status")
nats_kb=$(for p in $(pgrep -P "$stack" nats-server); do awk '/^VmRSS:/ {print $2}' "/proc/$p/status"; done | awk '{s += $1} END {print s + 0}')
printf '\n== memory of the embedded stack (vps-stack; its nats-server apart)\n'
printf 'idle after setup: %d MB; peak under the runs: %d MB; nats-server now: %d MB\n' \
  $((idle_kb / 1024)) $((peak_kb / 1024)) $((nats_kb / 1024))

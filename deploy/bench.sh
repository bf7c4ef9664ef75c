#!/usr/bin/env bash
# Measures the gateway on this machine: requests per second and latency percentiles for
#   GET  /api/auth/me   with a JWT (panel),
#   POST /api/getUser   with an API key (Skyport), and
#   GET  /api/v1/servers/ listing 100 servers (VPS.org),
# the median time from creating a BusyBox server to its running on an LXC node, next to
# raw lxc-create + lxc-start (deploy/bench_servers.py; needs root and LXC), and the median
# snapshot, rollback, backup and restore times next to the raw lxc-snapshot and tar | zstd,
# with backup throughput (deploy/bench_snapshots.py; SIZE_MB of data, default 200), against a release
# build of the embedded stack, with wrk as the load generator on loopback.
# Then the status route (answered from monitor-svc's latest sample), the Socket.IO fan-out from
# a NATS publish to CLIENTS (1000) socket.io-client sockets (p50/p99), and one monitor-svc
# cycle over 10,000 servers on 100 nodes (cargo bench -p monitor-svc --bench cycle), and the
# mail pipeline: MAILS (2000) events through notify-svc to an SMTP server on loopback
# (aiosmtpd), mails per second and the delay from event to delivered mail (p50/p99).
# Settings: DURATION (default 15s), CONNECTIONS (32), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nats-server >/dev/null || missing+=(nats-server)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release --locked -p stack

data=$(mktemp -d /tmp/vps-bench.XXXXXX)
# Unprivileged guests live below it: their mapped root must be able to pass through.
chmod 711 "$data"
port=15000
export VPS_DATA_DIR=$data VPS_GATEWAY_PORT=$port VPS_NATS_PORT=14222 \
  VPS_IDENTITY_PORT=15051 VPS_SERVER_PORT=15052 VPS_SNAPSHOT_PORT=15053 VPS_NODE_PORT=15054 \
  VPS_MONITOR_PORT=15055 VPS_NOTIFY_PORT=15056 RUST_LOG=${RUST_LOG:-warn} \
  VPS_LIVE_MAX_SOCKETS_PER_USER=${CLIENTS:-1000}
# An SMTP server on loopback that keeps what it receives, for the mail pipeline.
python3 -c 'import aiosmtpd' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6'
python3 crates/tests/support/smtp_sink.py 12525 "$data/mails.jsonl" --raw >"$data/smtp.out" 2>/dev/null &
smtp=$!
export VPS_SMTP__HOST=127.0.0.1 VPS_SMTP__PORT=12525 VPS_SMTP__TLS=none
./target/release/vps-stack >"$data/stack.out" 2>"$data/stack.err" &
stack=$!
cleanup() {
  cp "$data/stack.err" /tmp/bench-stack.err 2>/dev/null || true
  kill -INT $stack 2>/dev/null; wait $stack 2>/dev/null
  kill $smtp 2>/dev/null; wait $smtp 2>/dev/null
  for dir in lxc-bench lxc-snap; do
    for name in $(ls "$data/$dir" 2>/dev/null); do
      lxc-destroy -P "$data/$dir" -n "$name" -f -s >/dev/null 2>&1 || true
    done
  done
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q "Stop:" "$data/stack.out" 2>/dev/null && break; sleep 0.2; done
gw=http://127.0.0.1:$port

password=$(cat "$data/admin-password")
token=$(curl -sf "$gw/api/auth/login" -H 'content-type: application/json' \
  -d "{\"login\":\"admin\",\"password\":\"$password\"}" | jq -r .accessToken)
key=$(curl -sf "$gw/api/tokens" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"type":"skyport","name":"bench"}' | jq -r .token)

cat >"$data/getuser.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"type":"username","value":"admin"}'
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "$key"
LUA

run() {
  local name=$1; shift
  echo "== $name ($THREADS threads, $CONNECTIONS connections, $DURATION)"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | tee "$data/wrk.out" \
    | grep -E "Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%"
}
run "GET /api/auth/me (JWT)" -H "authorization: Bearer $token" "$gw/api/auth/me"
run "POST /api/getUser (x-api-key)" -s "$data/getuser.lua" "$gw/api/getUser"

if command -v lxc-create >/dev/null && [ "$(id -u)" -eq 0 ]; then
  python3 deploy/bench_snapshots.py "$gw" "$password" "$data/lxc-snap" "${ROUNDS:-7}" "${SIZE_MB:-200}"
  python3 deploy/bench_servers.py "$gw" "$password" "$data/lxc-bench" "${ROUNDS:-7}" "$data/vpsorg-token"
  run "GET /api/v1/servers/ (100 servers, VPS.org token)" \
    -H "authorization: Bearer $(cat "$data/vpsorg-token")" "$gw/api/v1/servers/"
  # A fresh token: the ones above may have expired during the server benchmarks.
  token=$(curl -sf "$gw/api/auth/login" -H 'content-type: application/json' \
    -d "{\"login\":\"admin\",\"password\":\"$password\"}" | jq -r .accessToken)
  server_id=$(curl -sf "$gw/api/server" -H "authorization: Bearer $token" | jq '.[0].id')
  run "GET /api/server/$server_id/status (JWT; monitor-svc's latest sample)" \
    -H "authorization: Bearer $token" "$gw/api/server/$server_id/status"
  echo "== Socket.IO fan-out (${CLIENTS:-1000} clients of one server, socket.io-client over WebSocket)"
  [ -d crates/tests/js/node_modules/socket.io-client ] ||
    npm ci --prefix crates/tests/js --no-audit --no-fund --loglevel=error >/dev/null
  BASE=$gw TOKEN=$token SERVER_ID=$server_id CLIENTS=${CLIENTS:-1000} \
    NATS_URL="nats://vps:$(cat "$data/secrets/nats-password")@127.0.0.1:14222" \
    node crates/tests/js/fanout.mjs
else
  echo "(server benchmarks skipped: they need root and LXC)"
fi

echo "== monitor-svc: one poll cycle over 10,000 servers on 100 nodes"
NATS_URL="nats://vps:$(cat "$data/secrets/nats-password")@127.0.0.1:14222" \
  cargo bench --locked -q -p monitor-svc --bench cycle 2>/dev/null

echo "== notify-svc: events to mails at an SMTP server on loopback (a burst, then 50 a second)"
for run in "${MAILS:-2000} 0" "500 50"; do
  set -- $run
  NATS_URL="nats://vps:$(cat "$data/secrets/nats-password")@127.0.0.1:14222" \
    SINK="$data/mails.jsonl" OWNER_ID=1 COUNT=$1 RATE=$2 \
    cargo bench --locked -q -p notify-svc --bench pipeline 2>/dev/null
done

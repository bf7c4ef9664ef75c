#!/usr/bin/env bash
# Sets up and runs the whole stack on its embedded defaults (Debian/Ubuntu, as root or with
# sudo): installs nats-server if missing, builds the launcher, and starts every service on
# loopback with SQLite files under ./data (override with VPS_DATA_DIR). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v nats-server >/dev/null; then
  echo "==> installing nats-server"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }

echo "==> building (the first build takes a few minutes)"
cargo build --release --locked -p stack
exec ./target/release/vps-stack

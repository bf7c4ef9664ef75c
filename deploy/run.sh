#!/usr/bin/env bash
# Sets up and runs the whole stack on its embedded defaults (Debian/Ubuntu, as root or with
# sudo): installs nats-server, LXC, busybox and jq if missing, builds the launcher, and starts every service on
# loopback with SQLite files under ./data (override with VPS_DATA_DIR). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_packages=()
command -v nats-server >/dev/null || need_packages+=(nats-server)
command -v lxc-create >/dev/null || need_packages+=(lxc)
command -v busybox >/dev/null || need_packages+=(busybox)
command -v jq >/dev/null || need_packages+=(jq)   # for the README's first requests
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "==> installing ${need_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }

# LXC containers need the lxcbr0 bridge of lxc-net (started here too where systemd is absent).
if ! ip link show lxcbr0 >/dev/null 2>&1; then
  echo "==> starting lxc-net"
  as_root /usr/libexec/lxc/lxc-net start >/dev/null 2>&1 || as_root systemctl start lxc-net || true
fi

echo "==> building (the first build takes a few minutes)"
cargo build --release --locked -p stack
exec ./target/release/vps-stack

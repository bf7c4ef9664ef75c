#!/usr/bin/env bash
# Sets up and runs the whole stack on its embedded defaults (Debian/Ubuntu, as root or with
# sudo): installs nats-server, LXC, a static busybox, zstd and jq if missing, builds the
# dashboard (web/, with Node.js) and the launcher, and starts every service on
# loopback with SQLite files under ./data (override with VPS_DATA_DIR). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_packages=()
command -v nats-server >/dev/null || need_packages+=(nats-server)
command -v lxc-create >/dev/null || need_packages+=(lxc)
# A static busybox: guests made from it need none of the host's libraries bound in.
dpkg -s busybox-static >/dev/null 2>&1 || need_packages+=(busybox-static)
command -v newuidmap >/dev/null || need_packages+=(uidmap)
# Backups: guests' files as tar streams compressed with zstd, loop images made with mkfs.
command -v zstd >/dev/null || need_packages+=(zstd)
command -v mkfs.ext4 >/dev/null || need_packages+=(e2fsprogs)
command -v jq >/dev/null || need_packages+=(jq)   # for the README's first requests
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "==> installing ${need_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }

# Guests are unprivileged: their ids map into a subordinate range root must own.
for ids in /etc/subuid /etc/subgid; do
  if ! grep -qE '^(root|0):1000000:65536$' "$ids" 2>/dev/null; then
    echo "==> adding root:1000000:65536 to $ids"
    echo "root:1000000:65536" | as_root tee -a "$ids" >/dev/null
  fi
done

# LXC containers need the lxcbr0 bridge and its dnsmasq (lxc-net), started here where
# systemd is absent and restarted where its dnsmasq has died.
as_root bash deploy/lxc-net.sh

# The dashboard, built with Node.js (20.19 or later, for Vite 8) and served by the gateway.
command -v npm >/dev/null || { as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
. deploy/node.sh
echo "==> building the dashboard"
npm ci --prefix web --no-audit --no-fund --loglevel=error >/dev/null
npm run build --prefix web >/dev/null
export VPS_WEB_DIR=${VPS_WEB_DIR:-$PWD/web/dist}

echo "==> building (the first build takes a few minutes)"
cargo build --release --locked -p stack
exec ./target/release/vps-stack

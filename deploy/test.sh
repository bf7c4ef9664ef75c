#!/usr/bin/env bash
# Sets up and runs the whole test suite on a Debian/Ubuntu machine (as root, or with sudo):
# installs what the tests need (nats-server, LXC, a static busybox, uidmap, zstd, PostgreSQL and
# promtool from Debian; the
# fakepve Proxmox VE test server, moto's S3 server, aiosmtpd and the Standard Webhooks library
# from PyPI; socket.io-client and the dashboard's packages from npm, Chromium from Debian), starts lxc-net and a throw-away PostgreSQL
# cluster on loopback, then runs the format check, clippy and every test.
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
# monitor-svc's tests: ip and tc (iproute2) and nsenter (util-linux) drive a guest's network.
command -v tc >/dev/null || need_packages+=(iproute2)
command -v nsenter >/dev/null || need_packages+=(util-linux)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_packages+=(postgresql)
# The live feed's test runs the official socket.io-client on Node.js.
command -v node >/dev/null || need_packages+=(nodejs)
command -v npm >/dev/null || need_packages+=(npm)
# The dashboard's end-to-end test drives Debian's Chromium (no browser download).
command -v chromium >/dev/null || need_packages+=(chromium)
# The example alerting rules are checked and unit-tested by promtool, from Debian's prometheus.
command -v promtool >/dev/null || need_packages+=(prometheus)
# docker-compose.yml is checked by Debian's docker-compose, which parses it without an engine.
command -v docker-compose >/dev/null || need_packages+=(docker-compose)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "==> installing ${need_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }

# The Proxmox VE test server, from PyPI.
if ! python3 -c 'import fakepve, cryptography' >/dev/null 2>&1; then
  echo "==> installing fakepve"
  python3 -m pip install --quiet --disable-pip-version-check 'fakepve[crypto]==0.5.0'
fi
# An S3-compatible server for the backup target's tests: moto's, from PyPI.
if ! python3 -c 'import moto, flask, flask_cors, sys; sys.exit(moto.__version__ != "5.2.5")' >/dev/null 2>&1; then
  echo "==> installing moto (S3)"
  python3 -m pip install --quiet --disable-pip-version-check 'moto[s3]==5.2.5' 'flask==3.1.3' 'flask-cors==6.0.2'
fi

# notify-svc's tests: an SMTP server (aiosmtpd) and the Standard Webhooks reference library.
if ! python3 -c 'import aiosmtpd, standardwebhooks, sys; sys.exit(aiosmtpd.__version__ != "1.4.6")' >/dev/null 2>&1; then
  echo "==> installing aiosmtpd and standardwebhooks"
  python3 -m pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6' 'standardwebhooks==1.1.0'
fi

# socket.io-client, at the version its lock file pins.
if [ ! -d crates/tests/js/node_modules/socket.io-client ]; then
  echo "==> installing socket.io-client"
  npm ci --prefix crates/tests/js --no-audit --no-fund --loglevel=error >/dev/null
fi

# The dashboard (web/): its packages at the versions its lock file pins, its unit tests, and
# the build the gateway serves in the browser test.
. deploy/node.sh
echo "==> the dashboard: npm ci, unit tests, build"
npm ci --prefix web --no-audit --no-fund --loglevel=error >/dev/null
npm test --prefix web -- --reporter=dot
npm run build --prefix web

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

# A private PostgreSQL cluster for this run, removed on exit.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_dir=$(mktemp -d /tmp/vps-test-pg.XXXXXX)
pg_port=${VPS_TEST_PG_PORT:-54329}
run_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$pg_dir"
cleanup() {
  run_pg "$pg_bin/pg_ctl -D $pg_dir/data -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap cleanup EXIT
echo "==> starting PostgreSQL ($pg_bin) on 127.0.0.1:$pg_port"
run_pg "$pg_bin/initdb -D $pg_dir/data -A trust -U postgres" >/dev/null
run_pg "$pg_bin/pg_ctl -D $pg_dir/data -l $pg_dir/log -w -o '-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400' start" >/dev/null

export VPS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
export VPS_TEST_REQUIRE_POSTGRES=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# A CI run builds once: incremental artefacts would only take disk (gigabytes) and time.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

# The Kubernetes manifests, rendered and validated offline (kubectl renders them; CI's machine
# image carries it).
echo "==> Kubernetes manifests"
if command -v kubectl >/dev/null; then
  bash deploy/k8s/validate.sh
elif [ "${CI:-}" = true ]; then
  echo "test.sh: kubectl (with kustomize built in) is required in CI to render deploy/k8s" >&2
  exit 1
else
  echo "(skipped: kubectl is not installed; CI checks them)"
fi

echo "==> alerting rules"
bash deploy/prometheus/check.sh

echo "==> docker-compose.yml"
bash deploy/compose-check.sh

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> the services' binaries (the cluster test runs each as its own process)"
cargo build --workspace --bins --locked
echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

# Sourced by run.sh and test.sh: puts a Node.js of 20.19 or later on PATH, as the dashboard's
# build (Vite 8) needs. Debian 12's own is 18: then Node.js 22 is taken from the npm registry
# (the node-linux-<arch> package) into ~/.cache/vps-node, once. Needs npm.
node_recent() {
  command -v node >/dev/null &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}
if ! node_recent; then
  case "$(uname -m)" in
    x86_64) node_arch=x64 ;;
    aarch64) node_arch=arm64 ;;
    *) node_arch=$(uname -m) ;;
  esac
  node_dir=${XDG_CACHE_HOME:-$HOME/.cache}/vps-node
  if [ ! -x "$node_dir/node_modules/node-linux-$node_arch/bin/node" ]; then
    echo "==> Node.js $(node --version 2>/dev/null || echo '(none)') is too old for the dashboard; fetching Node.js 22 from the npm registry"
    npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error "node-linux-$node_arch@22.12.0" >/dev/null
  fi
  export PATH="$node_dir/node_modules/node-linux-$node_arch/bin:$PATH"
  node_recent || { echo "no Node.js 20.19 or later could be had" >&2; return 1; }
fi

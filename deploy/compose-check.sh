#!/usr/bin/env bash
# Checks docker-compose.yml without a container engine: Debian's docker-compose parses it
# (`docker-compose config`) with a .env made by compose-env.sh in a scratch copy, and the
# rendered file is checked for what the services need (a healthcheck on each, the gateway
# waiting for them all, every peer it calls, databases and NATS where they are used).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker-compose >/dev/null || { echo "compose-check: docker-compose is required (apt-get install docker-compose)"; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/deploy"
cp docker-compose.yml "$scratch/"
cp -r deploy/compose deploy/compose-env.sh "$scratch/deploy/"
bash "$scratch/deploy/compose-env.sh" >/dev/null
docker-compose -f "$scratch/docker-compose.yml" config >"$scratch/rendered.yml"
python3 - "$scratch/rendered.yml" <<'PY'
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
grpc = {"identity": 50051, "server": 50052, "snapshot": 50053, "node": 50054,
        "monitor": 50055, "notify": 50056}
problems = []
for name, port in grpc.items():
    svc = services[name]
    env = svc.get("environment", {})
    if "healthcheck" not in svc:
        problems.append(f"{name} has no healthcheck")
    if env.get("VPS_LISTEN") != f"0.0.0.0:{port}":
        problems.append(f"{name} does not listen on {port}")
    if not str(env.get("VPS_DATABASE_URL", "")).startswith(f"postgres://{name}:"):
        problems.append(f"{name} has no database of its own")
gateway = services["gateway"]
for name in grpc:
    if gateway["depends_on"].get(name, {}).get("condition") != "service_healthy":
        problems.append(f"the gateway does not wait for {name} to be healthy")
for peer in ("IDENTITY", "NODE", "SERVER", "SNAPSHOT", "NOTIFY"):
    if f"VPS_PEERS__{peer}" not in gateway["environment"]:
        problems.append(f"the gateway does not know where {peer.lower()} is")
for name in ("server", "snapshot", "monitor", "notify", "gateway"):
    if not str(services[name]["environment"].get("VPS_NATS_URL", "")).startswith("nats://"):
        problems.append(f"{name} has no NATS")
if problems:
    sys.exit("compose-check: " + "; ".join(problems))
print(f"compose-check: docker-compose.yml parses; {len(services)} services as expected")
PY

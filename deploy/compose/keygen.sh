#!/bin/sh
# docker-compose.yml's one-shot `keygen` service: runs as root in the control-plane image
# before any service starts, makes the caller-token keys (docs/grpc.md) and hands each
# service only its own private key:
#   /keys/all              every key pair (`vps-stack keygen`); mounted in this container only
#   /keys/<service>/       that service's volume: signing.key, owned by uid 10001 (vps), 0400
#   /keys/public/          every <service>.pub, for all services to verify with
# Keys are kept in /keys/all, so running this again (every `docker compose up`) hands out the
# same keys. To rotate them all: `docker compose down`, `docker volume rm <project>_caller-keys`,
# `docker compose up`.
set -eu

vps-stack keygen /keys/all >/dev/null

# The image's unprivileged user (deploy/Dockerfile: useradd --uid 10001 vps).
owner=10001:10001

chown "$owner" /keys/public
chmod 0755 /keys/public
for public in /keys/all/*.pub; do
    install -o 10001 -g 10001 -m 0444 "$public" "/keys/public/$(basename "$public")"
done

for service in gateway identity server snapshot node monitor notify; do
    dir=/keys/$service
    if [ ! -d "$dir" ]; then
        echo "keygen: $dir is not mounted (docker-compose.yml lists one volume per service)" >&2
        exit 1
    fi
    chown "$owner" "$dir"
    chmod 0700 "$dir"
    install -o 10001 -g 10001 -m 0400 "/keys/all/$service.key" "$dir/signing.key"
done
echo "keygen: caller-token keys ready for gateway identity server snapshot node monitor notify"

#!/usr/bin/env bash
# Writes .env next to docker-compose.yml with fresh random secrets, for
#   bash deploy/compose-env.sh && docker compose up --build
# It never overwrites an existing .env (that would lock the services out of the database, the
# node credentials and the root passwords sealed with the old values). The file is 0600 and
# git-ignored; keep it, or the secrets in it, as you would any password.
# Needs openssl, or /dev/urandom with base64 and od.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
env_file=$root/.env

if [ -e "$env_file" ]; then
    echo "compose-env: $env_file exists; not overwriting it (move it away to make a new one)" >&2
    exit 1
fi

# rand_base64 N / rand_hex N: N random bytes, base64 or hex, on one line.
if command -v openssl >/dev/null 2>&1; then
    rand_base64() { openssl rand -base64 "$1" | tr -d '\n'; }
    rand_hex() { openssl rand -hex "$1" | tr -d '\n'; }
else
    rand_base64() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }
    rand_hex() { head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
fi

jwt_secret=$(rand_base64 48)
credentials_key=$(rand_base64 32)
server_secrets_key=$(rand_base64 32)
nats_server_password=$(rand_hex 32)
nats_snapshot_password=$(rand_hex 32)
nats_monitor_password=$(rand_hex 32)
nats_notify_password=$(rand_hex 32)
nats_gateway_password=$(rand_hex 32)
nats_events_password=$(rand_hex 32)
postgres_password=$(rand_hex 32)
identity_db_password=$(rand_hex 32)
server_db_password=$(rand_hex 32)
node_db_password=$(rand_hex 32)
snapshot_db_password=$(rand_hex 32)
monitor_db_password=$(rand_hex 32)
notify_db_password=$(rand_hex 32)
notify_secrets_key=$(rand_base64 32)
# 24 characters, easy to paste: base64 with - and _ for + and /.
admin_password=$(rand_base64 18 | tr '+/' '-_')

# Sanity check, so a missing tool fails here rather than as a bad key at start-up.
for value in "$jwt_secret" "$credentials_key" "$server_secrets_key" "$nats_server_password" \
    "$nats_snapshot_password" "$nats_monitor_password" "$nats_notify_password" \
    "$nats_gateway_password" "$nats_events_password" \
    "$postgres_password" "$identity_db_password" "$server_db_password" "$node_db_password" \
    "$snapshot_db_password" "$monitor_db_password" "$notify_db_password" "$notify_secrets_key" \
    "$admin_password"; do
    if [ "${#value}" -lt 24 ]; then
        echo "compose-env: could not generate random values (need openssl, or base64 and od)" >&2
        exit 1
    fi
done

umask 077
set -o noclobber  # refuse to overwrite a .env that appeared meanwhile
cat >"$env_file" <<ENV
# docker-compose.yml's secrets, made by deploy/compose-env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ).
# Changing one after the first start needs more than editing it here: the database role
# passwords are set when PostgreSQL's volume is created, and data sealed with a key cannot be
# read with another.

# identity-svc: HMAC key for access tokens (48 random bytes, base64) and the first administrator.
VPS_JWT_SECRET=$jwt_secret
VPS_ADMIN_EMAIL=admin@example.com
VPS_ADMIN_PASSWORD=$admin_password

# node-svc: encrypts hypervisor credentials (32 random bytes, base64).
VPS_CREDENTIALS_KEY=$credentials_key
# server-svc: encrypts root passwords and stored replies; a key of its own (32 random bytes, base64).
VPS_SERVER_SECRETS_KEY=$server_secrets_key
# notify-svc: seals webhooks' signing secrets; a key of its own (32 random bytes, base64).
VPS_NOTIFY_SECRETS_KEY=$notify_secrets_key

# NATS: a user per service, and \`events\` for other teams' consumers (read-only); hex, as
# they travel in nats:// URLs as they are.
VPS_NATS_SERVER_PASSWORD=$nats_server_password
VPS_NATS_SNAPSHOT_PASSWORD=$nats_snapshot_password
VPS_NATS_MONITOR_PASSWORD=$nats_monitor_password
VPS_NATS_NOTIFY_PASSWORD=$nats_notify_password
VPS_NATS_GATEWAY_PASSWORD=$nats_gateway_password
VPS_NATS_EVENTS_PASSWORD=$nats_events_password

# PostgreSQL: the superuser postgres, and one role per service owning its own database.
VPS_POSTGRES_PASSWORD=$postgres_password
VPS_IDENTITY_DB_PASSWORD=$identity_db_password
VPS_SERVER_DB_PASSWORD=$server_db_password
VPS_NODE_DB_PASSWORD=$node_db_password
VPS_SNAPSHOT_DB_PASSWORD=$snapshot_db_password
VPS_MONITOR_DB_PASSWORD=$monitor_db_password
VPS_NOTIFY_DB_PASSWORD=$notify_db_password

# Mail: the development catcher (mailpit, UI on http://localhost:8025), in plain SMTP on the
# internal network. For real mail set seed 000's SMTP_HOST, SMTP_PORT, SMTP_USER and
# SMTP_PASS instead (STARTTLS on 587, or TLS on 465) and delete the two VPS_SMTP_ lines.
SMTP_HOST=mail
SMTP_PORT=1025
VPS_SMTP_TLS=none
VPS_SMTP_ALLOW_PLAINTEXT_NETWORK=true
ENV

echo "compose-env: wrote $env_file"
echo "compose-env: log in as admin@example.com with VPS_ADMIN_PASSWORD from it"

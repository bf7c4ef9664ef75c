#!/bin/sh
# PostgreSQL's first start (docker-entrypoint-initdb.d; docker-compose.yml mounts this file):
# one role and one database per service, each role owning its database with its own
# password, and PUBLIC unable to connect to any of them, so a service's role reaches its own
# database only. The passwords come from the postgres container's environment
# (IDENTITY_DB_PASSWORD, SERVER_DB_PASSWORD, NODE_DB_PASSWORD, SNAPSHOT_DB_PASSWORD,
# MONITOR_DB_PASSWORD, NOTIFY_DB_PASSWORD; docker-compose.yml fills them from .env).
#
# Runs only when the data volume is empty. To change a password later:
#   docker compose exec postgres psql -U postgres -c "ALTER ROLE node PASSWORD '...'"
#
# The entrypoint sources this file when it is not executable, so it sets no shell options
# and does not exit on success.
set -e

vps_create_service_database() {
    # $1: role and database name; $2: the role's password.
    if [ -z "$2" ]; then
        echo "postgres-init: no password for the $1 role; set it in .env (bash deploy/compose-env.sh)" >&2
        return 1
    fi
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" \
        --dbname "${POSTGRES_DB:-postgres}" \
        -v name="$1" -v password="$2" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
}

vps_create_service_database identity "${IDENTITY_DB_PASSWORD:-}"
vps_create_service_database server "${SERVER_DB_PASSWORD:-}"
vps_create_service_database node "${NODE_DB_PASSWORD:-}"
vps_create_service_database snapshot "${SNAPSHOT_DB_PASSWORD:-}"
vps_create_service_database monitor "${MONITOR_DB_PASSWORD:-}"
vps_create_service_database notify "${NOTIFY_DB_PASSWORD:-}"

# The maintenance database is the superuser's only.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-postgres}" \
    -c "REVOKE CONNECT ON DATABASE \"${POSTGRES_DB:-postgres}\" FROM PUBLIC;"

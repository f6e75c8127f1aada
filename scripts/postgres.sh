#!/usr/bin/env bash
# A PostgreSQL for the tests: installs the server from Debian's packages if missing, starts a
# cluster with pg_ctlcluster, makes a role `zkinfer` (allowed to create databases: each test
# makes its own) and a scratch database, and prints its URL. Idempotent. Fails, never skips,
# when the server cannot be started.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian packages)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
read -r version cluster port status _ < <(pg_lsclusters --no-header | head -1) || true
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  cluster=main
  pg_createcluster "$version" "$cluster" >&2
  read -r version cluster port status _ < <(pg_lsclusters --no-header | head -1)
fi
if [ "$status" != "online" ]; then
  pg_ctlcluster "$version" "$cluster" start >&2
fi
psql_admin() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtA "$@"; }
for _ in $(seq 1 30); do psql_admin -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
psql_admin -c 'SELECT 1' >/dev/null
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'zkinfer'")" != "1" ]; then
  psql_admin -c "CREATE ROLE zkinfer LOGIN PASSWORD 'zkinfer' CREATEDB" >&2
fi
db=zkinfer_scratch
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
  psql_admin -c "CREATE DATABASE $db OWNER zkinfer" >&2
fi
# Each test run makes databases named zkinfer_t_*: drop those of earlier runs.
for old in $(psql_admin -c "SELECT datname FROM pg_database WHERE datname LIKE 'zkinfer_t_%'"); do
  psql_admin -c "DROP DATABASE IF EXISTS $old" >&2
done
echo "postgres://zkinfer:zkinfer@127.0.0.1:$port/$db"

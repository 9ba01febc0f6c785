#!/usr/bin/env bash
# Install (if missing) and start the stock Debian PostgreSQL cluster, then create
# the audit test database and its two roles. Idempotent; run as root.
#   leis_test      owns the database (schema, migrations, purge)
#   leis_test_app  the broker's role: INSERT/SELECT on audit tables only
# Prints the DSNs the audit tests read from LEIS_TEST_PG_DSN / LEIS_TEST_PG_APP_DSN.
set -euo pipefail

if ! command -v pg_lsclusters >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y postgresql
fi

read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n 1) || true
if [[ -z "${version:-}" ]]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_createcluster "$version" main
    read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n 1)
fi
if [[ "$status" != online* ]]; then
    pg_ctlcluster "$version" "$cluster" start
fi

for _ in $(seq 1 50); do
    if su postgres -c "psql -p $port -qtAc 'SELECT 1'" >/dev/null 2>&1; then break; fi
    sleep 0.2
done

psql_admin() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qtA $*"; }

psql_admin "-c \"DO \\\$\\\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'leis_test') THEN
    CREATE ROLE leis_test LOGIN PASSWORD 'leis_test';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'leis_test_app') THEN
    CREATE ROLE leis_test_app LOGIN PASSWORD 'leis_test_app';
  END IF;
END \\\$\\\$;\""
if [[ -z "$(psql_admin "-c \"SELECT 1 FROM pg_database WHERE datname = 'leis_test'\"")" ]]; then
    psql_admin "-c 'CREATE DATABASE leis_test OWNER leis_test'"
fi
psql_admin "-d leis_test -c 'REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT CONNECT ON DATABASE leis_test TO leis_test_app'"

echo "LEIS_TEST_PG_DSN=postgresql://leis_test:leis_test@127.0.0.1:${port}/leis_test"
echo "LEIS_TEST_PG_APP_DSN=postgresql://leis_test_app:leis_test_app@127.0.0.1:${port}/leis_test"

#!/usr/bin/env bash
# QuantumLeap's database, and per city a read-only role for Grafana.
#
# Runs once, as the database superuser, when the TimescaleDB container starts on an empty data
# volume (/docker-entrypoint-initdb.d). tests/platform/test_dashboards.py runs it on a plain
# PostgreSQL (QL_REQUIRE_TIMESCALEDB=false) and then the dashboards' SQL as the Grafana roles.
#
#   role quantumleap            owns database quantumleap (PostGIS, TimescaleDB) and every table
#                               QuantumLeap creates: schema mt<tenant>, table et<type>
#   role grafana_<tenant>       may read schema mt<tenant> only; its search_path is that schema, so
#                               the dashboards name tables without a schema and serve every city
#
# Environment: DOS_TENANTS (space- or comma-separated), QUANTUMLEAP_DB_PASSWORD_FILE and
# GRAFANA_DB_PASSWORD_FILE (Docker secrets), QL_REQUIRE_TIMESCALEDB (default true).
set -euo pipefail

: "${DOS_TENANTS:?set DOS_TENANTS, e.g. "dortmund schwerte"}"
ql_password="$(cat "${QUANTUMLEAP_DB_PASSWORD_FILE:-/run/secrets/quantumleap_db_password}")"
reader_password="$(cat "${GRAFANA_DB_PASSWORD_FILE:-/run/secrets/grafana_db_password}")"
require_timescaledb="${QL_REQUIRE_TIMESCALEDB:-true}"
psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}")

"${psql[@]}" --dbname "${POSTGRES_DB:-postgres}" -v password="$ql_password" <<'SQL'
SELECT format('CREATE ROLE quantumleap LOGIN PASSWORD %L', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'quantumleap') \gexec
SELECT 'CREATE DATABASE quantumleap OWNER quantumleap'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'quantumleap') \gexec
REVOKE ALL ON DATABASE quantumleap FROM PUBLIC;
SQL

"${psql[@]}" --dbname quantumleap -v require_timescaledb="$require_timescaledb" <<'SQL'
CREATE EXTENSION IF NOT EXISTS postgis;
SELECT CASE WHEN :'require_timescaledb' = 'true'
            THEN 'CREATE EXTENSION IF NOT EXISTS timescaledb'
            ELSE 'SELECT ''timescaledb not required'' AS note' END \gexec
SQL

for raw in ${DOS_TENANTS//,/ }; do
  tenant="$(printf '%s' "$raw" | tr '[:upper:]' '[:lower:]')"
  if [[ ! "$tenant" =~ ^[a-z0-9_-]{1,50}$ ]]; then
    echo "10-quantumleap.sh: tenant '$raw' is not 1-50 of [A-Za-z0-9_-]" >&2
    exit 1
  fi
  "${psql[@]}" --dbname quantumleap -v role="grafana_$tenant" -v schema="mt$tenant" -v password="$reader_password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- QuantumLeap creates the schema at the first notification of the city; here it exists before,
-- owned by quantumleap, so that its tables are readable by the city's role from the first row on.
SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION quantumleap', :'schema') \gexec
SELECT format('GRANT CONNECT ON DATABASE quantumleap TO %I', :'role') \gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', :'schema', :'role') \gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', :'schema', :'role') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE quantumleap IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
              :'schema', :'role') \gexec
SELECT format('ALTER ROLE %I SET search_path = %I, public', :'role', :'schema') \gexec
SQL
  echo "10-quantumleap.sh: tenant $tenant: schema mt$tenant, read-only role grafana_$tenant"
done

#!/bin/sh
# Postgres first-start hook (mounted into /docker-entrypoint-initdb.d by docker-compose.yaml):
# besides Airflow's database (POSTGRES_DB, owned by POSTGRES_USER), create MLflow's own role
# and database. The password comes from the environment (MLFLOW_DB_PASSWORD), never from a file.
# Runs once, on an empty data volume; to change the password later use ALTER ROLE.
set -eu
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD is required}"
MLFLOW_DB_USER=${MLFLOW_DB_USER:-mlflow}
MLFLOW_DB_NAME=${MLFLOW_DB_NAME:-mlflow}

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
    -v user="$MLFLOW_DB_USER" -v db="$MLFLOW_DB_NAME" -v password="$MLFLOW_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
echo "pixtag: database ${MLFLOW_DB_NAME} owned by ${MLFLOW_DB_USER} is ready"

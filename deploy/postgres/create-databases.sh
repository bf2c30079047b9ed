#!/bin/bash
# One PostgreSQL role and one database per part of the product, each owned by its own role, so
# that a client site's credentials open its own database and nothing else:
#
#   database   role     password from           used by
#   idp        idp      IDP_DB_PASSWORD         the IdP, its worker, housekeeping (DATABASE_URL)
#   site_a     site_a   SITE_A_DB_PASSWORD      client site A (SITE_A_DATABASE_URL)
#   site_b     site_b   SITE_B_DB_PASSWORD      client site B (SITE_B_DATABASE_URL)
#
# compose.yaml mounts it into the postgres image's /docker-entrypoint-initdb.d/, which runs it once,
# when the data volume is new. It is safe to run again (it creates what is missing and sets the
# passwords), e.g. after changing a password or on a server set up by hand:
#
#   docker compose exec postgres /docker-entrypoint-initdb.d/10-create-databases.sh
#
# APP_DATABASES (default "idp site_a site_b") lists the names; NAME_DB_PASSWORD (upper case) is
# each one's password. psql connects as POSTGRES_USER to POSTGRES_DB, as the image sets them (or
# through the usual PGHOST, PGPORT... variables).
#
# The image's entrypoint sources this file when it is not executable: everything runs in a
# subshell so that nothing here changes the entrypoint's own shell.
(
    set -euo pipefail
    for name in ${APP_DATABASES:-idp site_a site_b}; do
        variable="$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
        password="${!variable:-}"
        if [ -z "$password" ]; then
            echo "create-databases.sh: set $variable, the password of the PostgreSQL role $name" >&2
            exit 1
        fi
        echo "create-databases.sh: role and database $name"
        psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
            --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
            --set name="$name" --set password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name')
\gexec
ALTER ROLE :"name" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name')
\gexec
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT ALL ON DATABASE :"name" TO :"name";
SQL
    done
)

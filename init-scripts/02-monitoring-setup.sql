-- The monitoring agent's role: reads statistics (pg_monitor), cannot read or
-- write application data, and may hold at most a few connections.
\set ON_ERROR_STOP on
\set monitor_user `printf %s "$DBAAS_MONITOR_USER"`
\set monitor_password `printf %s "$DBAAS_MONITOR_PASSWORD"`
\set app_db `printf %s "$POSTGRES_DB"`
\set app_user `printf %s "$DBAAS_APP_USER"`

CREATE ROLE :"monitor_user" LOGIN PASSWORD :'monitor_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT 3;
GRANT pg_monitor TO :"monitor_user";
GRANT CONNECT ON DATABASE :"app_db" TO :"monitor_user";

-- Query statistics where the server has preloaded the extension's library
-- (the compose command asks for it; Debian's and the official images ship
-- it). Asked of the setting, not of pg_available_extensions, which reads
-- every extension's control file (~13 ms of a create).
SELECT current_setting('shared_preload_libraries') ~ '(^|[\s,])"?pg_stat_statements"?($|[\s,])'
  AS has_pg_stat_statements \gset
\if :has_pg_stat_statements
-- In a schema of the superuser's, not in the app-owned public: an extension
-- among a tenant's objects resolves names the tenant can shadow when the
-- superuser updates it. The app role finds it on its default search_path.
CREATE SCHEMA IF NOT EXISTS extensions;
GRANT USAGE ON SCHEMA extensions TO PUBLIC;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA extensions;
ALTER ROLE :"app_user" IN DATABASE :"app_db" SET search_path = "$user", public, extensions;
-- Without its comment, a dump (`dbaasctl dump`) carries only CREATE
-- EXTENSION IF NOT EXISTS, which the app user's import passes; a COMMENT ON
-- EXTENSION would need the superuser.
COMMENT ON EXTENSION pg_stat_statements IS NULL;
\endif

-- Runs once, as the superuser, at the first start of an instance (the image's
-- /docker-entrypoint-initdb.d contract). Names and passwords come from the
-- container's environment (instances/<id>/.env) through psql variables, so
-- psql quotes them (:"ident" and :'literal') and this file holds no secret.
\set ON_ERROR_STOP on
\set app_user `printf %s "$DBAAS_APP_USER"`
\set app_password `printf %s "$DBAAS_APP_PASSWORD"`
\set app_db `printf %s "$POSTGRES_DB"`

-- The application's role: owns its database, nothing more.
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
ALTER DATABASE :"app_db" OWNER TO :"app_user";
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"app_db" TO :"app_user";
-- PostgreSQL < 15 lets every role create objects in public; 15+ does not.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO :"app_user";

-- Nobody but the superuser connects to the maintenance databases, or creates
-- objects in their public schemas (template1's is copied into new databases):
-- 15+ grants no CREATE there to begin with, so only older servers need the
-- two connections.
REVOKE CONNECT ON DATABASE postgres, template1 FROM PUBLIC;
SELECT current_setting('server_version_num')::int < 150000 AS public_create \gset
\if :public_create
\connect template1
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
\connect postgres
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
\endif

#!/bin/bash
# dbaas recovery: fills an empty data directory from a pgBackRest repository
# and replays WAL to a target, in a one-off run of the instance's db service
# (`docker compose run --rm --no-deps db bash /agent/recover.sh ...`), so that
# nothing can connect while it runs: the server it starts listens on a unix
# socket in /tmp only. Once the server has promoted, the roles get the
# instance's own passwords (from /run/secrets), the recovery settings are
# removed, and the server stops cleanly; the instance then starts as usual.
#
#   recover.sh STANZA [--set LABEL] [--time T | --lsn L] [--conf FILE]
#
# The source repository is mounted at /source (its pgBackRest repository in
# /source/repo), or FILE (root's, 0600) describes the source's S3 repository
# with its keys; the target data directory is PGDATA. Runs as root (to read
# the secrets) and runs PostgreSQL and pgBackRest as postgres.
set -Eeuo pipefail
stanza=${1:?usage: recover.sh STANZA [--set LABEL] [--time T | --lsn L]}
shift
set_opt=() target=(--type=default) source_conf=
while [ $# -gt 0 ]; do
    case "$1" in
        --set) set_opt=(--set="$2"); target=(--type=immediate); shift 2 ;;
        --time) target=(--type=time --target="$2" --target-action=promote); shift 2 ;;
        --lsn) target=(--type=lsn --target="$2" --target-action=promote); shift 2 ;;
        --conf) source_conf=$2; shift 2 ;;
        *) echo "recover: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ ${#set_opt[@]} -gt 0 ] && [ "${target[0]}" = --type=immediate ] && target+=(--target-action=promote)
: "${PGDATA:?PGDATA is not set}"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
read_secret() { [ -r "/run/secrets/$1" ] && cat "/run/secrets/$1"; }

if [ -s "$PGDATA/PG_VERSION" ]; then
    echo "recover: $PGDATA is not empty; dbaas restores only into an empty data directory" >&2
    exit 1
fi
mkdir -p "$PGDATA" /tmp/recover /tmp/pgbackrest
chown postgres:postgres "$PGDATA" /tmp/recover /tmp/pgbackrest
chmod 0700 "$PGDATA"

# A configuration of the source's stanza alone: the repository at /source, and
# none of the target's own repositories.
conf=/tmp/pgbackrest-source.conf
if [ -n "$source_conf" ]; then
    # Holds keys: readable by postgres alone.
    install -o postgres -g postgres -m 0600 "$source_conf" "$conf"
    printf '[%s]\npg1-path=%s\n' "$stanza" "$PGDATA" >>"$conf"
else
    cat >"$conf" <<EOF
[global]
repo1-path=/source/repo
lock-path=/tmp/pgbackrest
log-level-file=off
log-level-console=warn
[$stanza]
pg1-path=$PGDATA
EOF
    chmod 0644 "$conf"
fi

started=$(date +%s)
as_pg pgbackrest --config="$conf" --stanza="$stanza" "${set_opt[@]}" "${target[@]}" \
    --recovery-option="restore_command=pgbackrest --config=$conf --stanza=$stanza archive-get %f \"%p\"" restore

# hot_standby off: the server takes connections only after it has promoted.
log=/tmp/recover/server.log
as_pg pg_ctl -D "$PGDATA" -w -t 60 -l "$log" -s start -o \
    "-c listen_addresses= -c unix_socket_directories=/tmp/recover -c archive_mode=off -c hot_standby=off -c shared_preload_libraries=" \
    || { tail -n 20 "$log" >&2; exit 1; }
# The privileged channel's settings (src/db/privileged.rs): a restored
# cluster is the tenant's, and so are its ALTER DATABASE/ROLE ... SET.
export PGOPTIONS='-c search_path=pg_catalog,pg_temp -c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -c default_transaction_read_only=off'
psql=(as_pg psql -X -q -A -t -v ON_ERROR_STOP=1 -h /tmp/recover -U postgres -d postgres)
until [ "$("${psql[@]}" -c 'SELECT pg_catalog.pg_is_in_recovery()' 2>/dev/null)" = f ]; do
    if ! as_pg pg_ctl -D "$PGDATA" -s status >/dev/null 2>&1; then
        echo "recover: PostgreSQL stopped during recovery; the end of its log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    sleep 0.2
done

# The instance's own passwords (the restored ones are the source's), then no
# trace of the recovery (or of the source's ALTER SYSTEM) in the configuration.
export SU_PW APP_PW MON_PW
SU_PW=$(read_secret postgres_password) APP_PW=$(read_secret app_password) MON_PW=$(read_secret monitor_password)
"${psql[@]}" -v su="${POSTGRES_USER:-postgres}" -v app="${DBAAS_APP_USER:-}" -v mon="${DBAAS_MONITOR_USER:-}" <<'SQL'
\set su_pw `printf '%s' "$SU_PW"`
\set app_pw `printf '%s' "$APP_PW"`
\set mon_pw `printf '%s' "$MON_PW"`
SET password_encryption = 'scram-sha-256';
SELECT pg_catalog.format('ALTER ROLE %I PASSWORD %L', :'su', :'su_pw') WHERE :'su_pw' <> '' \gexec
SELECT pg_catalog.format('ALTER ROLE %I PASSWORD %L', :'app', :'app_pw') WHERE :'app_pw' <> '' AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'app') \gexec
SELECT pg_catalog.format('ALTER ROLE %I PASSWORD %L', :'mon', :'mon_pw') WHERE :'mon_pw' <> '' AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'mon') \gexec
-- The recovery's settings, and anything else the source's
-- postgresql.auto.conf held: dbaas writes its configuration into files of
-- its own, so a restored or cloned cluster takes none of the source's.
ALTER SYSTEM RESET ALL;
SQL
unset SU_PW APP_PW MON_PW
as_pg pg_ctl -D "$PGDATA" -m fast -w -t 120 -s stop

# Who logs in how, written afresh: the restored pg_hba.conf and
# pg_ident.conf are the source's. The rules are the image's own, as its
# entrypoint writes them at initdb (scripts/docker-entrypoint.sh,
# init_cluster and local_rules; a unit test holds the two equal); the
# entrypoint adds the app user's mapping at every start.
su=${POSTGRES_USER:-postgres} auth=scram-sha-256
# dbaas-access-rules:begin
hba_lines=("host all $su all reject"
    "local all $su peer map=dbaas" "local all +pg_monitor $auth"
    "local all all peer map=dbaas" "local replication $su peer map=dbaas"
    "host all all all $auth")
ident_lines=("# dbaas: which operating-system user logs in over the local socket as which role"
    "dbaas postgres $su" "dbaas root $su")
# dbaas-access-rules:end
# Removed first: the restored files are the source's, and a link among them
# must not be followed.
rm -f "$PGDATA/pg_hba.conf" "$PGDATA/pg_ident.conf"
printf '%s\n' "${hba_lines[@]}" | as_pg tee "$PGDATA/pg_hba.conf" >/dev/null
printf '%s\n' "${ident_lines[@]}" | as_pg tee "$PGDATA/pg_ident.conf" >/dev/null
chmod 0600 "$PGDATA/pg_hba.conf" "$PGDATA/pg_ident.conf"
printf '{"recovered": true, "seconds": %d}\n' $(($(date +%s) - started))

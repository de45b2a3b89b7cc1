#!/bin/bash
# dbaas backup sidecar: the compose service `backup` of an instance, in the
# instance's own image (pgBackRest and jq are there), as the postgres user. It
# reaches the server through the shared socket directory (/var/run/postgresql)
# and reads the data directory read-only, as pgBackRest's backup needs.
#
#   backup.sh run                 the sidecar: stanza, first full backup, the
#                                 schedule, retention on a timer
#   backup.sh backup [full|diff|incr]   one backup now into each repository,
#                                 each then verified; prints the JSON lines
#   backup.sh verify LABEL [REPO] restores LABEL into /verify and checks it
#   backup.sh forget-s3           deletes this instance's stanza from the S3
#                                 repository (destroy --delete-backups)
#   backup.sh check [REPO]        forces a WAL switch and waits until the
#                                 segment is archived (in REPO alone if given;
#                                 the latest point is then restorable)
#
# Every backup and every verification is one JSON line appended to
# $DBAAS_BACKUP_LOG (/var/lib/pgbackrest/backups.json, which is
# DBAAS_HOME/backups/<id>/backups.json on the host). A verification restores
# the backup into a scratch directory, starts a throw-away PostgreSQL on it
# (unix socket in /tmp only, no TCP), replays WAL to the end of the backup,
# and checks that it promotes, that the canary row written just before the
# backup is there, that every table of the app database reads, and that
# amcheck finds the btree indexes sound.
#
# DBAAS_REPOS is "1", or "1 2" with the S3 repository: every backup goes to
# each, and each is verified from its own repository (WAL included). The
# local repository keeps working when S3 cannot be reached.
set -u
# Started as root (the compose service, or `docker compose exec`) only to hand
# the scratch directory and the repository to postgres; the rest runs as
# postgres.
if [ "$(id -u)" = 0 ]; then
    mkdir -p /verify /var/lib/pgbackrest
    chown postgres:postgres /verify /var/lib/pgbackrest
    # The S3 repository's keys, readable by postgres alone. Root here has no
    # DAC_OVERRIDE: the directory is root's while the file goes in.
    if [ -r /run/secrets/pgbackrest_s3 ]; then
        mkdir -p /etc/pgbackrest/conf.d
        chown root:root /etc/pgbackrest/conf.d
        chmod 0700 /etc/pgbackrest/conf.d
        rm -f /etc/pgbackrest/conf.d/s3.conf
        install -m 0400 /run/secrets/pgbackrest_s3 /etc/pgbackrest/conf.d/s3.conf
        chown postgres:postgres /etc/pgbackrest/conf.d/s3.conf
        chown postgres:postgres /etc/pgbackrest/conf.d
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups bash "$0" "$@"
fi
stanza=${DBAAS_INSTANCE:?DBAAS_INSTANCE is not set}
log=${DBAAS_BACKUP_LOG:-/var/lib/pgbackrest/backups.json}
schedule=${DBAAS_BACKUP_SCHEDULE:-24h}
database=${DBAAS_DATABASE:-postgres}
tick=${DBAAS_BACKUP_TICK:-30}
expire_every=${DBAAS_BACKUP_EXPIRE_EVERY:-3600}
max_indexes=${DBAAS_VERIFY_MAX_INDEXES:-500}
scratch=${DBAAS_VERIFY_DIR:-/verify}/data
sock=${PGHOST:-/var/run/postgresql}
repos=${DBAAS_REPOS:-1}
s3_stanza=0
lock=/tmp/dbaas-backup.lock
export LC_ALL=C
# The tenant boundary: every session this script opens is the superuser's,
# in databases whose owner is the app user. Its settings are pinned at
# startup (a startup option beats ALTER DATABASE/ROLE ... SET), so no name
# in our SQL resolves to an object the app user made (CVE-2018-1058), and
# the owner's statement_timeout or read-only default cannot fail a backup
# or its check. Our SQL names every function with its schema as well.
export PGOPTIONS='-c search_path=pg_catalog,pg_temp -c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -c default_transaction_read_only=off'

# Stop at once when asked (compose stops this service before db on a
# restart): every process of this user in the container (a backup, a
# verification's throw-away server) is told to stop too. The loop runs its
# work in the background and waits, so that the trap runs at once.
trap 'kill -TERM -1 2>/dev/null; exit 0' TERM INT

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
epoch() { date -u +%s; }
say() { printf '%s backup: %s\n' "$(now)" "$*" >&2; }
record() { printf '%s\n' "$1" >>"$log"; }
psql_main() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$sock" -U postgres "$@"; }
pgbr() { pgbackrest --stanza="$stanza" "$@"; }
# One repository alone, for the commands without --repo (stanza-create and
# check work on every repository or fail): the configuration without the
# other's lines (and, for the local one, without S3's keys).
pgbr_only() {
    local repo=$1 other=2 include=/etc/pgbackrest/conf.d
    shift
    [ "$repo" = 1 ] || other=1
    grep -v "^repo$other-" /etc/pgbackrest/pgbackrest.conf >"/tmp/pgbackrest-repo$repo.conf"
    if [ "$repo" = 1 ]; then include=/tmp/no-include; mkdir -p "$include"; fi
    pgbackrest --config="/tmp/pgbackrest-repo$repo.conf" --config-include-path="$include" --stanza="$stanza" "$@"
}
# The last lines of a command's output, as one line.
tail_of() { printf '%s' "$1" | tail -n 4 | tr '\n\t' '  ' | cut -c1-600; }

# The server, once its first start has run (the entrypoint removes the
# marker after the init scripts): a backup taken before would hold a
# half-made instance. An image whose entrypoint personalised on a
# temporary server (no TCP address) passes the same test.
wait_for_server() {
    until [ ! -e "${PGDATA:-/var/lib/postgresql/data}/dbaas-personalise" ] &&
        [ "$(psql_main -d postgres -c 'SHOW listen_addresses' 2>/dev/null)" = '*' ]; do sleep 1; done
}

ensure_stanza() {
    local out
    until out=$(pgbr stanza-create 2>&1); do
        if [ "$repos" != 1 ] && pgbr_only 1 stanza-create >/dev/null 2>&1; then
            say "stanza-create in S3 failed (retried before the next S3 backup): $(tail_of "$out")"
            return 0
        fi
        say "stanza-create failed, retrying in 10 s: $(tail_of "$out")"
        sleep 10 &
        wait $!
    done
    s3_stanza=1
}

# The newest backup in repository REPO (pgbackrest info), as JSON, or empty.
newest_backup() {
    pgbr info --repo="$1" --output=json 2>/dev/null | jq -c '.[0].backup // [] | last // empty'
}

# The canary: a row with a fresh token in the postgres database, written just
# before a backup; the verification of that backup must find it.
write_canary() {
    local token=$1
    psql_main -d postgres -v token="$token" <<'SQL'
CREATE TABLE IF NOT EXISTS public.dbaas_backup_canary (token text PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT pg_catalog.now());
REVOKE ALL ON public.dbaas_backup_canary FROM PUBLIC;
DELETE FROM public.dbaas_backup_canary WHERE written_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '30 days');
INSERT INTO public.dbaas_backup_canary (token) VALUES (:'token');
SQL
}

# One backup of TYPE into REPO, then its verification. Prints the
# backup's JSON line.
do_backup() {
    local type=$1 reason=$2 repo=${3:-1} token started out rc line b took
    token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    started=$(epoch)
    if ! out=$(write_canary "$token" 2>&1); then
        line=$(jq -cn --arg ts "$(now)" --arg type "$type" --arg reason "$reason" --arg error "canary: $(tail_of "$out")" \
            --argjson repo "$repo" '{ts: $ts, event: "backup", ok: false, repo: $repo, type: $type, reason: $reason, error: $error}')
        record "$line"; printf '%s\n' "$line"; return 1
    fi
    if [ "$repo" != 1 ] && [ "$s3_stanza" != 1 ]; then
        out=$(pgbr stanza-create 2>&1) && s3_stanza=1
    fi
    if [ "$repo" = 1 ] || [ "$s3_stanza" = 1 ]; then
        out=$(pgbr backup --repo="$repo" --type="$type" 2>&1); rc=$?
    else
        rc=1
    fi
    took=$(($(epoch) - started))
    if [ $rc -ne 0 ]; then
        line=$(jq -cn --arg ts "$(now)" --arg type "$type" --arg reason "$reason" --arg error "$(tail_of "$out")" \
            --argjson took "$took" --argjson repo "$repo" '{ts: $ts, event: "backup", ok: false, repo: $repo, type: $type, reason: $reason, duration_s: $took, error: $error}')
        record "$line"; printf '%s\n' "$line"; return 1
    fi
    b=$(newest_backup "$repo")
    line=$(jq -cn --arg ts "$(now)" --arg reason "$reason" --arg token "$token" --argjson took "$took" --argjson b "${b:-null}" \
        --argjson repo "$repo" '{ts: $ts, event: "backup", ok: true, repo: $repo, "label": $b.label, type: $b.type, reason: $reason,
          start: ($b.timestamp.start | todate), stop: ($b.timestamp.stop | todate),
          start_lsn: $b.lsn.start, stop_lsn: $b.lsn.stop, start_wal: $b.archive.start, stop_wal: $b.archive.stop,
          size_bytes: $b.info.size, repo_size_bytes: $b.info.repository.delta, duration_s: $took, canary: $token}')
    record "$line"
    printf '%s\n' "$line"
    # The backup is taken whatever its verification says (which is recorded).
    verify "$(jq -r .label <<<"$line")" "$token" "$repo" || true
    [ "$repo" = 1 ] || s3_listing
}

# The labels the S3 repository holds, for dbaas to list (it cannot look
# into the bucket itself): s3.json next to the log.
s3_listing() {
    pgbr info --repo=2 --output=json 2>/dev/null |
        jq -c '{ts: (now | todate), labels: [.[0].backup // [] | .[] | .label]}' >"$(dirname "$log")/s3-listing.json.tmp" &&
        mv "$(dirname "$log")/s3-listing.json.tmp" "$(dirname "$log")/s3-listing.json"
}

# Restores LABEL into the scratch directory, starts a throw-away server on
# it and checks it. Prints (and records) the verification's JSON line.
verify() {
    local label=$1 token=${2:-} repo=${3:-1} started out reason="" restore_s tables=0 indexes=0 line ok=false tmpsock=/tmp/verify
    local hba=/tmp/verify-hba.conf checker
    started=$(epoch)
    rm -rf "$scratch" "$tmpsock"; mkdir -p "$scratch" "$tmpsock"; chmod 0700 "$scratch" "$tmpsock"
    # The copy's own pg_hba.conf is the live server's: this one lets the
    # checking role below in, on a socket only this user can reach.
    printf 'local all all trust\n' >"$hba"
    # The role that reads the tenant's tables and runs amcheck: no
    # superuser, so that whatever of the tenant's could still run in a
    # check runs without privileges. A fresh name each time, which the
    # tenant cannot have taken in advance.
    checker=dbaas_check_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    # WAL from the same repository as the backup, so that each repository
    # is proven on its own.
    if ! out=$(pgbr restore --repo="$repo" --set="$label" --pg1-path="$scratch" --type=immediate --target-action=promote \
        --recovery-option="restore_command=pgbackrest --stanza=$stanza --repo=$repo --pg1-path=$scratch archive-get %f \"%p\"" 2>&1); then
        reason="restore failed: $(tail_of "$out")"
    else
        # No TCP, no archiving, small memory; hot_standby off, so the server
        # accepts connections only once recovery has ended and it promoted.
        if ! out=$(pg_ctl -D "$scratch" -w -t 600 -l /tmp/verify-server.log -s start -o \
            "-c listen_addresses= -c unix_socket_directories=$tmpsock -c hba_file=$hba -c archive_mode=off -c hot_standby=off -c shared_buffers=32MB -c max_wal_size=256MB -c shared_preload_libraries= -c logging_collector=off" 2>&1); then
            reason="the restored server did not start: $(tail_of "$(tail -n 6 /tmp/verify-server.log 2>/dev/null)")"
        fi
    fi
    if [ -z "$reason" ]; then
        local q=(psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$tmpsock" -U postgres)
        # pg_ctl returns while WAL is replayed (the server takes no
        # connections yet): wait, bounded, for the promotion.
        local until=$(($(epoch) + ${DBAAS_VERIFY_TIMEOUT:-3600}))
        until [ "$("${q[@]}" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
            if ! pg_ctl -D "$scratch" -s status >/dev/null 2>&1; then
                reason="the restored server stopped during recovery: $(tail_of "$(tail -n 6 /tmp/verify-server.log 2>/dev/null)")"
                break
            fi
            if [ "$(epoch)" -ge "$until" ]; then reason="recovery did not end within ${DBAAS_VERIFY_TIMEOUT:-3600} s"; break; fi
            sleep 0.2
        done
        restore_s=$(($(epoch) - started))
    fi
    if [ -z "$reason" ]; then
        # The app owner's settings of its database and roles (a
        # statement_timeout of 1 ms, a read-only default, a search path)
        # are the live server's business, not the check's: gone from the
        # copy before anything else runs there.
        if ! out=$("${q[@]}" -d postgres -c 'DELETE FROM pg_catalog.pg_db_role_setting' 2>&1); then
            reason="resetting the copy's settings: $(tail_of "$out")"
        elif [ -n "$token" ] && [ "$("${q[@]}" -d postgres -v t="$token" <<<"SELECT pg_catalog.count(*) FROM public.dbaas_backup_canary WHERE token OPERATOR(pg_catalog.=) :'t';" 2>&1)" != 1 ]; then
            reason="the canary row written before the backup is missing"
        elif ! out=$("${q[@]}" -d "$database" -v c="$checker" 2>&1 <<'SQL'
-- amcheck in a schema of the superuser's, made now: the tenant owns public
-- and could have put a closer-matching bt_index_check there.
CREATE ROLE :"c" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
CREATE SCHEMA :"c";
DROP EXTENSION IF EXISTS amcheck;
CREATE EXTENSION amcheck SCHEMA :"c";
GRANT USAGE ON SCHEMA :"c" TO :"c";
SELECT pg_catalog.format('GRANT CONNECT ON DATABASE %I TO %I', pg_catalog.current_database(), :'c') \gexec
GRANT EXECUTE ON FUNCTION :"c".bt_index_check(pg_catalog.regclass) TO :"c";
SELECT pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %I; GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', n.nspname, :'c', n.nspname, :'c')
  FROM pg_catalog.pg_namespace n
 WHERE n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema', :'c'])
   AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\_toast%' AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\_temp%' \gexec
SQL
        ); then
            reason="preparing the check: $(tail_of "$out")"
        elif ! tables=$("${q[@]}" -U "$checker" -d "$database" 2>&1 <<'SQL'
SET statement_timeout = '10min';
SELECT pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %I.%I', n.nspname, c.relname)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'm']::"char"[])
   AND n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema'])
   AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\_toast%' \gexec
SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'm']::"char"[])
   AND n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema']);
SQL
        ); then
            reason="a table does not read: $(tail_of "$tables")"
        elif ! indexes=$("${q[@]}" -U "$checker" -d "$database" -v max="$max_indexes" -v c="$checker" 2>&1 <<'SQL'
SET statement_timeout = '10min';
SELECT pg_catalog.count(:"c".bt_index_check(s.oid::pg_catalog.regclass)) FROM (
  SELECT c.oid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
    JOIN pg_catalog.pg_am a ON a.oid OPERATOR(pg_catalog.=) c.relam
   WHERE a.amname OPERATOR(pg_catalog.=) 'btree' AND c.relpersistence OPERATOR(pg_catalog.<>) 't' AND i.indisready AND i.indisvalid
   ORDER BY pg_catalog.random() LIMIT :max) s;
SQL
        ); then
            reason="amcheck: $(tail_of "$indexes")"
        else
            ok=true
            tables=$(tail -n 1 <<<"$tables")
            indexes=$(tail -n 1 <<<"$indexes")
        fi
    fi
    pg_ctl -D "$scratch" -m immediate -s stop >/dev/null 2>&1
    rm -rf "$scratch" "$tmpsock" "$hba"
    [[ $tables =~ ^[0-9]+$ ]] || tables=0
    [[ $indexes =~ ^[0-9]+$ ]] || indexes=0
    line=$(jq -cn --arg ts "$(now)" --arg lbl "$label" --argjson ok "$ok" --arg reason "$reason" \
        --argjson took "$(($(epoch) - started))" --argjson restore "${restore_s:-null}" \
        --argjson tables "$tables" --argjson indexes "$indexes" --argjson repo "$repo" \
        '{ts: $ts, event: "verify", repo: $repo, "label": $lbl, verified: $ok, duration_s: $took, restore_s: $restore,
          tables: $tables, indexes_checked: $indexes} + (if $ok then {} else {reason: $reason} end)')
    record "$line"
    printf '%s\n' "$line"
    $ok
}

# Seconds since the epoch at which the schedule wants the next full backup,
# given the stop time of the last one (0: none yet). SCHEDULE is "Nh"/"Nm"/
# "Nd" (every N since the last full backup) or "daily@HH:MM" (UTC).
due_at() {
    local last=$1 n unit slot
    [ "$last" -gt 0 ] || { echo 0; return; }
    case "$schedule" in
        daily@*)
            slot=$(date -u -d "today ${schedule#daily@}" +%s)
            [ "$(epoch)" -ge "$slot" ] || slot=$((slot - 86400))
            if [ "$last" -lt "$slot" ]; then echo "$slot"; else echo $((slot + 86400)); fi ;;
        *[0-9][mhd])
            n=${schedule%?}; unit=${schedule: -1}
            case $unit in m) n=$((n * 60)) ;; h) n=$((n * 3600)) ;; d) n=$((n * 86400)) ;; esac
            echo $((last + n)) ;;
        *) echo 9999999999 ;;
    esac
}

run() {
    local last expired_at=0 full r reason
    local -A failed_at=() backoff=()
    mkdir -p "$(dirname "$log")"
    say "instance $stanza: schedule $schedule, repositories $repos; waiting for the server"
    wait_for_server
    ensure_stanza
    # A segment the server tried to archive before the stanza existed is
    # pushed now: check switches WAL, which wakes the archiver, and waits
    # until that segment (and so every earlier one) is in the repository.
    pgbr check >/dev/null 2>&1 &
    wait $! || say "the first archive check failed; archiving is retried by the server"
    while :; do
        for r in $repos; do
            full=$(pgbr info --repo="$r" --output=json 2>/dev/null | jq -r '[.[0].backup // [] | .[] | select(.type == "full") | .timestamp.stop] | max // 0')
            last=${full:-0}
            # A failed backup (the server restarting under it, the
            # repository down) is retried after a minute, then after twice
            # as long each time up to half an hour, not at every tick.
            if [ "$(epoch)" -ge "$(due_at "$last")" ] && [ $(($(epoch) - ${failed_at[$r]:-0})) -ge "${backoff[$r]:-60}" ]; then
                reason=scheduled; [ "$last" -gt 0 ] || reason=first
                ( flock 9; do_backup full "$reason" "$r" >/dev/null ) 9>"$lock" &
                if wait $!; then
                    failed_at[$r]=0 backoff[$r]=60
                else
                    [ "${failed_at[$r]:-0}" -eq 0 ] || backoff[$r]=$((${backoff[$r]:-60} * 2 > 1800 ? 1800 : ${backoff[$r]:-60} * 2))
                    failed_at[$r]=$(epoch)
                    wait_for_server
                fi
                expired_at=$(epoch)
            fi
        done
        if [ $(($(epoch) - expired_at)) -ge "$expire_every" ]; then
            # Retention on a timer, so that time-based retention prunes even
            # when no backup is taken.
            for r in $repos; do
                ( flock 9; pgbr expire --repo="$r" >/dev/null 2>&1 || say "expire in repository $r failed" ) 9>"$lock" &
                wait $!
            done
            [ "$repos" = 1 ] || s3_listing
            expired_at=$(epoch)
        fi
        sleep "$tick" &
        wait $!
    done
}

case "${1:-run}" in
    run) run ;;
    backup)
        type=${2:-full}
        case "$type" in full | diff | incr) ;; *) echo "backup type must be full, diff or incr" >&2; exit 2 ;; esac
        wait_for_server
        ensure_stanza
        # The JSON lines say whether it worked; the exit status says only
        # whether the script ran.
        for r in $repos; do
            ( flock 9; do_backup "$type" on-demand "$r" ) 9>"$lock"
        done
        exit 0 ;;
    verify) ( flock 9; verify "${2:?usage: backup.sh verify LABEL [REPO]}" "" "${3:-1}" ) 9>"$lock" ;;
    forget-s3)
        [ "$repos" != 1 ] || { echo "this instance has no S3 repository" >&2; exit 2; }
        # stanza-delete needs backups stopped for the stanza first; the
        # instance is being destroyed, so nothing resumes them.
        pgbr stop --force >/dev/null && pgbr stanza-delete --repo=2 --force ;;
    check) if [ -n "${2:-}" ] && [ "$repos" != 1 ]; then pgbr_only "$2" check; else pgbr check; fi ;;
    *) echo "usage: backup.sh [run | backup [full|diff|incr] | verify LABEL [REPO] | forget-s3 | check [REPO]]" >&2; exit 2 ;;
esac

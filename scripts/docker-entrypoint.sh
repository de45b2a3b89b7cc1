#!/usr/bin/env bash
# Entrypoint of the dbaas/postgres images. It keeps the contract of the official
# postgres image so that either can be used: POSTGRES_USER, POSTGRES_PASSWORD
# (or *_FILE), POSTGRES_DB, POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD,
# PGDATA, and /docker-entrypoint-initdb.d run once on first init; the server
# runs as the postgres user.
#
# dbaas's fast path: `dbaas-template` as the command runs initdb alone into an
# empty PGDATA and leaves the marker file dbaas-personalise; dbaas copies that
# directory into new instances, and their first start personalises the copy
# (the superuser's password, the database, the init scripts) exactly as a
# first initialisation would, then removes the marker.
set -Eeo pipefail

# As PID 1, bash ignores signals it does not trap: without this, `docker stop`
# during first init would wait for its whole grace period.
trap 'exit 143' INT TERM

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

# VAR or VAR_FILE (docker secrets), like the official image.
file_env() {
    local var="$1" file_var="${1}_FILE" def="${2:-}" val
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        echo >&2 "error: both $var and $file_var are set (but are exclusive)"; exit 1
    fi
    val="$def"
    if [ -n "${!var:-}" ]; then val="${!var}"; elif [ -n "${!file_var:-}" ]; then val="$(< "${!file_var}")"; fi
    export "$var"="$val"
    unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
marker="$PGDATA/dbaas-personalise"

# dbaas starts a new instance's container while the template's copy fills
# PGDATA; the file dbaas-copying is there until the copy is complete. Wait
# for it (bounded; a bash builtin read with a timeout on an open pipe, not a
# sleep program per turn) before anything looks at the directory.
if [ -e "$PGDATA/dbaas-copying" ]; then
    exec 9<> <(:)
    for ((i = 0; i < 12000; i++)); do
        [ -e "$PGDATA/dbaas-copying" ] || break
        read -rt 0.01 -u 9 || :
    done
    exec 9<&-
    if [ -e "$PGDATA/dbaas-copying" ]; then
        echo >&2 "error: a template copy is still filling $PGDATA after 120 s (dbaas-copying is there)"
        exit 1
    fi
fi

# The settings the first initialisation needs, from VAR or VAR_FILE. Read as
# root where the files are root's (mode 0600), before becoming postgres.
init_env() {
    # Handed over by the root half on a pipe (see below), once.
    if [ -n "${DBAAS_SECRETS_FD:-}" ]; then
        IFS= read -r -d '' POSTGRES_PASSWORD <&3 || true
        IFS= read -r -d '' DBAAS_APP_PASSWORD <&3 || true
        IFS= read -r -d '' DBAAS_MONITOR_PASSWORD <&3 || true
        exec 3<&-
        unset DBAAS_SECRETS_FD
        export POSTGRES_PASSWORD DBAAS_APP_PASSWORD DBAAS_MONITOR_PASSWORD
    fi
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    # dbaas's init scripts read these (01-init-users.sql, 02-monitoring-setup.sql).
    file_env DBAAS_APP_PASSWORD
    file_env DBAAS_MONITOR_PASSWORD
}

# As root: prepare the directories, then re-exec as postgres.
if { [ "$1" = 'postgres' ] || [ "$1" = 'dbaas-template' ]; } && [ "$EUID" = 0 ]; then
    if [ ! -s "$PGDATA/PG_VERSION" ] || [ -e "$marker" ]; then
        init_env
        # The passwords cross to the postgres half on a pipe, not in the
        # environment: that half stays PID 1 through the first start, and a
        # process's starting environment stays readable in /proc/1/environ.
        exec 3< <(printf '%s\0' "$POSTGRES_PASSWORD" "$DBAAS_APP_PASSWORD" "$DBAAS_MONITOR_PASSWORD")
        unset POSTGRES_PASSWORD DBAAS_APP_PASSWORD DBAAS_MONITOR_PASSWORD
        export DBAAS_SECRETS_FD=3
    fi
    # An initialised server needs no password: none stays in its environment.
    if [ -s "$PGDATA/PG_VERSION" ] && [ ! -e "$marker" ]; then
        unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE DBAAS_APP_PASSWORD DBAAS_APP_PASSWORD_FILE \
            DBAAS_MONITOR_PASSWORD DBAAS_MONITOR_PASSWORD_FILE
    fi
    # Few processes: in a new container every program's first run reads
    # it through fuse-overlayfs, and this half runs before each start.
    # `install -d` makes what is missing and sets owner and mode of what
    # exists: two programs for what took mkdir, chown and two chmods.
    # dbaas mounts the instance's backup directory at /var/lib/pgbackrest
    # (archive_command pushes WAL into it as postgres); its contents are
    # postgres's already.
    private=("$PGDATA")
    if [ -d /var/lib/pgbackrest ]; then private+=(/var/lib/pgbackrest); fi
    # TLS: the server's certificate and key from the home's authority (two
    # secrets, root's on the host), copied where only postgres reads them.
    tls=/var/lib/postgresql/tls
    if [ "$1" = postgres ] && [ -r /run/secrets/server_key ]; then private+=("$tls"); fi
    install -d -o postgres -g postgres -m 0700 "${private[@]}"
    install -d -o postgres -g postgres -m 2777 /var/run/postgresql
    if [ "$1" = postgres ] && [ -r /run/secrets/server_key ]; then
        install -o postgres -g postgres -m 0600 /run/secrets/server_crt /run/secrets/server_key "$tls/"
        set -- "$@" -c ssl=on -c "ssl_cert_file=$tls/server_crt" -c "ssl_key_file=$tls/server_key" \
            -c ssl_min_protocol_version=TLSv1.2
    fi
    # The S3 repository's keys (a compose secret, root's on the host): a
    # copy only postgres reads, where pgBackRest looks for more settings.
    if [ -r /run/secrets/pgbackrest_s3 ]; then
        install -d -o postgres -g postgres -m 0700 /etc/pgbackrest/conf.d
        install -o postgres -g postgres -m 0400 /run/secrets/pgbackrest_s3 /etc/pgbackrest/conf.d/s3.conf
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

# initdb into the empty PGDATA, with the settings every instance gets; the
# marker says that the personalisation is still to run.
init_cluster() {
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
        echo >&2 "error: database is uninitialized and POSTGRES_PASSWORD is not set"
        echo >&2 "       set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)"
        exit 1
    fi
    # In the background with `wait`, so that a stop signal interrupts it.
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=peer --auth-host="$auth" $POSTGRES_INITDB_ARGS >/dev/null &
    wait $!
    {
        echo
        echo "listen_addresses = '*'"
        [ "$auth" = trust ] || echo "password_encryption = 'scram-sha-256'"
    } >> "$PGDATA/postgresql.conf"
    # Who logs in how (the first matching line decides). The local socket's
    # directory is shared with the sidecars (./run on the host), so it
    # trusts nobody: the superuser logs in only as the operating-system
    # user postgres (the server, the backup sidecar) or root (`docker
    # exec`), the monitoring role (pg_monitor's members: the agent, which
    # runs as nobody) with its password, any other role only as root
    # (secure_local_socket maps the app user: `dbaasctl psql`, dump,
    # import). Over TCP a password, never the superuser (00-superuser-local-only.sh
    # finds its line here), and the first start's guard (see personalise)
    # first: a template's copies then start without editing the file.
    {
        printf '%s\n' "$guard" "host all $POSTGRES_USER all reject"
        local_rules "$POSTGRES_USER" "$auth"
        printf '%s\n' "host all all all $auth"
    } >"$PGDATA/pg_hba.conf"
    printf '%s\n' "# dbaas: which operating-system user logs in over the local socket as which role" \
        >"$PGDATA/pg_ident.conf"
    ident_add "dbaas postgres $POSTGRES_USER"
    ident_add "dbaas root $POSTGRES_USER"
    : > "$marker"
}

# pg_hba.conf's rules for the local socket (see init_cluster): SUPERUSER AUTH.
local_rules() {
    printf '%s\n' "local all $1 peer map=dbaas" "local all +pg_monitor $2" \
        "local all all peer map=dbaas" "local replication $1 peer map=dbaas"
}

# Appends LINE to pg_ident.conf unless it is there (builtins only).
ident_add() {
    local text=''
    [ ! -r "$PGDATA/pg_ident.conf" ] || text=$(<"$PGDATA/pg_ident.conf")
    [[ $'\n'$text$'\n' == *$'\n'"$1"$'\n'* ]] || printf '%s\n' "$1" >>"$PGDATA/pg_ident.conf"
}

# At every start, before the server: root (`docker exec`: dbaasctl psql,
# dump, import) may log in as the app user over the socket, whichever way
# the cluster came (initdb, a template's copy, a restore). A cluster made
# before the socket was shared with the agent trusts every local login
# (initdb's `local all all trust`): its local lines give way to the rules
# above, and the map gets its users. Builtins only, unless there is
# something to change.
secure_local_socket() {
    local hba line su=${POSTGRES_USER:-postgres}
    [ -z "${DBAAS_APP_USER:-}" ] || ident_add "dbaas root \"$DBAAS_APP_USER\""
    hba=$(<"$PGDATA/pg_hba.conf")
    [[ $'\n'$hba =~ $'\n'local[[:space:]]+all[[:space:]]+all[[:space:]]+trust ]] || return 0
    {
        while IFS= read -r line; do
            [[ $line =~ ^[[:space:]]*local[[:space:]] ]] || printf '%s\n' "$line"
        done <<<"$hba"
        local_rules "$su" scram-sha-256
    } >"$PGDATA/pg_hba.conf.dbaas"
    mv -f "$PGDATA/pg_hba.conf.dbaas" "$PGDATA/pg_hba.conf"
    ident_add "dbaas postgres $su"
    ident_add "dbaas root $su"
    echo "entrypoint: the local socket now trusts no one (pg_hba.conf's local lines replaced)"
}

# At every start: TCP logins only over TLS (`hostssl`) when the instance
# has TLS and was not made with --allow-plaintext (DBAAS_TCP=ssl), either
# way otherwise. Only the catch-all password line changes, whichever way
# the cluster came; builtins only, unless there is something to change.
tcp_logins() {
    local want=host hba line out='' changed=''
    [ "${DBAAS_TCP:-}" != ssl ] || want=hostssl
    hba=$(<"$PGDATA/pg_hba.conf")
    while IFS= read -r line; do
        if [[ $line =~ ^(host|hostssl)[[:space:]]+all[[:space:]]+all[[:space:]]+all[[:space:]]+(scram-sha-256|md5)$ ]] \
            && [ "${BASH_REMATCH[1]}" != "$want" ]; then
            line="$want all all all ${BASH_REMATCH[2]}"
            changed=1
        fi
        out+=$line$'\n'
    done <<<"$hba"
    [ -n "$changed" ] || return 0
    printf '%s' "$out" >"$PGDATA/pg_hba.conf.dbaas"
    mv -f "$PGDATA/pg_hba.conf.dbaas" "$PGDATA/pg_hba.conf"
    echo "entrypoint: TCP logins: $want (pg_hba.conf)"
}

# The first start of a fresh cluster (from initdb or a template's copy): the
# superuser's own password, the database, the init scripts, on the real
# server (not a temporary one: its start and stop cost a create ~150 ms),
# with every TCP connection refused by a first pg_hba.conf line until they
# have run, so nothing outside the container connects before. The guard
# line goes, and the marker with it, only once everything ran: an
# interrupted run is redone at the next start. Then this shell stays as
# PID 1, passing docker's stop signal on to the server, until the container
# stops; later starts exec the server directly.
guard='host all all all reject # dbaas: until the first start has run'
personalise() {
    # The guard first, any earlier run's copy of it gone (`i` prints before
    # `d` looks at line 1), unless it is first already (a fresh cluster).
    local first=''
    read -r first <"$PGDATA/pg_hba.conf" || :
    [ "$first" = "$guard" ] ||
        sed -i -e "1i $guard" -e "/# dbaas: until the first start has run\$/d" "$PGDATA/pg_hba.conf"
    # A postmaster.pid left by a container stopped half-way names the same
    # pid as this one's server (a new pid namespace counts alike) and may
    # say "ready": only a file written after this point counts (a new file
    # each time: a restarted container keeps its /tmp).
    local since=/tmp/dbaas-first-start-${EPOCHREALTIME/./}
    : >"$since"
    # The server gets none of the passwords the init scripts need.
    (unset POSTGRES_PASSWORD DBAAS_APP_PASSWORD DBAAS_MONITOR_PASSWORD; exec "$@") &
    pg=$!
    trap 'kill -INT "$pg" 2>/dev/null; wait "$pg"; exit 143' INT TERM
    # Ready when the server's own postmaster.pid says so (its 8th line),
    # read without starting a program.
    # The pause is a builtin read with a timeout, not a sleep program.
    local pidfile=() tick
    exec {tick}<> <(:)
    until [ "$PGDATA/postmaster.pid" -nt "$since" ] && mapfile -t -n 8 pidfile <"$PGDATA/postmaster.pid" &&
        [ "${pidfile[0]:-}" = "$pg" ] && [[ "${pidfile[7]:-}" == ready* ]]; do
        kill -0 "$pg" 2>/dev/null || { wait "$pg"; exit $?; }
        read -rt 0.005 -u "$tick" || :
    done
    exec {tick}<&-
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc -q -h /var/run/postgresql)
    # First the superuser's password, then the database. A template holds
    # an empty database made ahead (dbaas_newdb), renamed here rather than
    # copied from template1 (CREATE DATABASE took ~170 ms of a create).
    local setpw='' batch
    [ -z "$POSTGRES_PASSWORD" ] || setpw="SET password_encryption = 'scram-sha-256'; ALTER ROLE :\"u\" PASSWORD :'pw';"
    batch="$setpw
SELECT CASE
    WHEN :'db' = 'postgres' OR EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') THEN NULL
    WHEN EXISTS (SELECT 1 FROM pg_database WHERE datname = 'dbaas_newdb') THEN format('ALTER DATABASE dbaas_newdb RENAME TO %I', :'db')
    ELSE format('CREATE DATABASE %I', :'db') END \\gexec
SELECT 'DROP DATABASE dbaas_newdb' WHERE EXISTS (SELECT 1 FROM pg_database WHERE datname = 'dbaas_newdb') \\gexec
"
    # One psql session for all of it, fed through a pipe (each session
    # costs a program start and a connection): a batch ends with a mark
    # that psql echoes once the batch has run, so that a .sh script runs
    # after the SQL before it, as with one psql per batch. ON_ERROR_STOP
    # ends the session at the first error, and the read below with it.
    coproc SQL { exec "${psql[@]}" --dbname postgres --set u="$POSTGRES_USER" \
        --set pw="$POSTGRES_PASSWORD" --set db="$POSTGRES_DB"; }
    local sql_in=${SQL[1]} sql_out=${SQL[0]} sql_pid=$SQL_PID marks=0
    run_batch() {
        [ -z "$batch" ] && return 0
        marks=$((marks + 1))
        printf '%s\n\\echo dbaas-mark-%d\n' "$batch" "$marks" >&"$sql_in"
        batch=''
        local line
        while IFS= read -r line <&"$sql_out"; do
            [ "$line" = "dbaas-mark-$marks" ] && return 0
            printf '%s\n' "$line"
        done
        echo >&2 "error: the first start's SQL stopped (see psql's error above)"
        exit 1
    }
    run_batch
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) run_batch; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
            *.sql) batch+="\\connect :\"db\""$'\n'"\\i $f"$'\n' ;;
            *.sql.gz) run_batch; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
            */\*) ;;
            *) echo "entrypoint: ignoring $f" ;;
        esac
    done
    run_batch
    exec {sql_in}>&-
    wait "$sql_pid" || { echo >&2 "error: the first start's psql session failed"; exit 1; }
    sed -i "/# dbaas: until the first start has run\$/d" "$PGDATA/pg_hba.conf"
    kill -HUP "$pg"
    rm -f "$marker"
    echo "entrypoint: init complete; PostgreSQL accepts connections"
    unset POSTGRES_PASSWORD DBAAS_APP_PASSWORD DBAAS_MONITOR_PASSWORD
    # Until the container stops: the server's exit status is the container's.
    wait "$pg"
    exit $?
}

if { [ "$1" = 'postgres' ] || [ "$1" = 'dbaas-template' ]; } && [ ! -s "$PGDATA/PG_VERSION" ]; then
    init_env
    init_cluster
fi
if [ "$1" = 'dbaas-template' ]; then
    # The database every instance gets, made once here (personalise renames it).
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -s start
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc -q --dbname postgres \
        -c 'CREATE DATABASE dbaas_newdb'
    pg_ctl -D "$PGDATA" -m fast -w -s stop
    echo "entrypoint: template ready in $PGDATA"
    exit 0
fi
# Settings sized to the container's memory, from the compose file's
# environment at each start, in a file postgresql.conf includes (so that
# `dbaasctl resize` can rewrite it and reload; ALTER SYSTEM still wins).
# Builtins only (printf, $(<file)): every program's first start in a new
# container is read through fuse-overlayfs.
if [ "$1" = 'postgres' ] && [ -n "${DBAAS_SHARED_BUFFERS:-}" ]; then
    printf '%s\n' \
        "# Sized to the container's memory by dbaas (the compose file's environment at" \
        "# each start; \`dbaasctl resize\` while it runs). ALTER SYSTEM overrides it." \
        "shared_buffers = '$DBAAS_SHARED_BUFFERS'" \
        "effective_cache_size = '$DBAAS_EFFECTIVE_CACHE_SIZE'" \
        "temp_file_limit = '$DBAAS_TEMP_FILE_LIMIT'" >"$PGDATA/dbaas-tuning.conf"
    include="include_if_exists = 'dbaas-tuning.conf'"
    conf=$(<"$PGDATA/postgresql.conf")
    [[ $'\n'$conf$'\n' == *$'\n'"$include"$'\n'* ]] || echo "$include" >>"$PGDATA/postgresql.conf"
    unset include conf
fi

if [ "$1" = 'postgres' ] && [ -s "$PGDATA/pg_hba.conf" ]; then
    secure_local_socket
    tcp_logins
fi
if [ "$1" = 'postgres' ] && [ -e "$marker" ]; then
    init_env
    personalise "$@"
fi
exec "$@"

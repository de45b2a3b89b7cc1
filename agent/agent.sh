#!/bin/bash
# dbaas monitoring agent: one JSON line per interval appended to
# $DBAAS_METRICS_FILE (/logs/metrics.json, which is instances/<id>/logs/ on the
# host). It runs in the instance's own PostgreSQL image (psql is there) as the
# compose service `agent`, connecting as the monitoring role (pg_monitor) with
# the libpq settings from its environment (PGHOST, PGUSER, the password from
# the file DBAAS_PASSWORD_FILE names (or PGPASSWORD),
# PGAPPNAME=dbaas-agent, PGOPTIONS with a statement_timeout).
#
# The sample is built by PostgreSQL itself (sample.sql), so the line is always
# valid JSON. When the database cannot be reached, the line says up: false and
# why. The file is rotated at DBAAS_METRICS_MAX_BYTES, keeping
# DBAAS_METRICS_KEEP older files (metrics.json.1 is the newest); rotation
# happens between writes, so a line is never split across files.
set -u
out=${DBAAS_METRICS_FILE:-/logs/metrics.json}
interval=${DBAAS_METRICS_INTERVAL:-10}
max_bytes=${DBAAS_METRICS_MAX_BYTES:-10485760}
keep=${DBAAS_METRICS_KEEP:-5}
size_every=${DBAAS_METRICS_SIZE_EVERY:-60}
top=${DBAAS_METRICS_TOP_TABLES:-10}
instance=${DBAAS_INSTANCE:-unknown}
here=$(cd "$(dirname "$0")" && pwd)

# As PID 1, bash ignores TERM and INT unless it traps them. A write to a psql
# that died must fail with EPIPE rather than kill the agent.
trap 'stop_psql; exit 0' TERM INT
trap '' PIPE

# Rotation by the size this script has written (no stat per sample).
size=$(stat -c %s "$out" 2>/dev/null || echo 0)
rotate() {
    local i
    [ "$size" -ge "$max_bytes" ] || return 0
    for ((i = keep - 1; i >= 1; i--)); do
        [ -e "$out.$i" ] && mv -f "$out.$i" "$out.$((i + 1))"
    done
    if [ "$keep" -ge 1 ]; then mv -f "$out" "$out.1"; else : >"$out"; fi
    size=0
}

json_escape() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/ }
    s=${s//$'\r'/ }
    s=${s//$'\t'/ }
    printf '%s' "$s"
}

# One psql session serves every sample (a coprocess fed \i sample.sql), so
# a sample costs no fork, exec or authentication; it is restarted when it
# dies (the database went away) or stops answering.
export LC_ALL=C PGCLIENTENCODING=UTF8   # ${#line} counts bytes
# bash unsets a coprocess's PSQL_PID and PSQL[] as soon as it reaps it
# (under `set -u` a later read of them killed the agent whenever the
# database went down): the agent keeps its own copy of the pid and reads
# the descriptors with defaults, a missing one meaning psql is gone.
psql_pid=
start_psql() {
    # The password is read from its file at every start, so a changed one is
    # picked up without restarting the agent.
    if [ -n "${DBAAS_PASSWORD_FILE:-}" ] && [ -r "$DBAAS_PASSWORD_FILE" ]; then
        PGPASSWORD=$(<"$DBAAS_PASSWORD_FILE")
        export PGPASSWORD
    fi
    coproc PSQL { exec psql -X -q -A -t -v ON_ERROR_STOP=0 -v instance="$instance" -v top="$top" 2>&1; }
    psql_pid=${PSQL_PID:-}
}
stop_psql() {
    if [ -n "$psql_pid" ]; then
        kill "$psql_pid" 2>/dev/null
        wait "$psql_pid" 2>/dev/null
    fi
    psql_pid=
}
# Sets `line` to the sample, or to psql's messages (returns 1).
sample() {
    local l="" out="" psql_in psql_out
    if [ -z "$psql_pid" ] || ! kill -0 "$psql_pid" 2>/dev/null; then
        stop_psql
        start_psql
    fi
    psql_in=${PSQL[1]:-} psql_out=${PSQL[0]:-}
    if [ -z "$psql_in" ] || [ -z "$psql_out" ] || ! printf '\\set db_size %s\n\\set with_size %s\n\\i %s\n\\echo __dbaas_end__\n' \
        "$db_size" "$with_size" "$here/sample.sql" >&"$psql_in" 2>/dev/null; then
        line="psql is not running"
        stop_psql
        return 1
    fi
    while IFS= read -r -t 10 l <&"$psql_out" 2>/dev/null; do
        [ "$l" = __dbaas_end__ ] && break
        out+="$l"$'\n'
    done
    if [ "$l" != __dbaas_end__ ]; then
        # EOF (psql exited: it could not connect, or lost the server) or
        # no answer in time: start over next time.
        stop_psql
        line=${out:-psql stopped answering}
        return 1
    fi
    line=${out%$'\n'}
    [[ $line == \{* && $line != *$'\n'* ]]
}

db_size=null   # the last database size, re-read every size_every seconds
size_at=0
while :; do
    started=${EPOCHREALTIME/./}
    printf -v now '%(%s)T' -1
    with_size=off
    if ((now - size_at >= size_every)); then with_size=on; fi
    if sample; then
        if [ "$with_size" = on ] && [[ $line =~ \"db_size_bytes\":\ ([0-9]+) ]]; then
            db_size=${BASH_REMATCH[1]}
            size_at=$now
        fi
    else
        took=$((${EPOCHREALTIME/./} - started))
        printf -v took '%d.%03d' $((took / 1000000)) $((took % 1000000 / 1000))
        line=$(printf '{"ts":"%s","v":1,"instance":"%s","up":false,"scrape_seconds":%s,"error":"%s"}' \
            "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$instance" "$took" \
            "$(json_escape "$(printf '%s' "$line" | tail -n 3)")")
    fi
    rotate
    printf '%s\n' "$line" >>"$out"
    size=$((size + ${#line} + 1))
    # The next sample is due one interval after this one started.
    rest=$((interval * 1000000 - (${EPOCHREALTIME/./} - started)))
    ((rest < 100000)) && rest=100000
    printf -v rest '%d.%06d' $((rest / 1000000)) $((rest % 1000000))
    sleep "$rest" &
    wait $!
done

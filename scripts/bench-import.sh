#!/usr/bin/env bash
# Import benchmark, every figure next to a baseline from the same run: a
# plain-SQL dump (pg_dump, pgbench -i -s SCALE: ~15 MB of COPY data per
# scale unit, plus its DDL) loaded by `dbaasctl import`, which splits it and
# runs it over a client connection as the app user (no psql: see
# src/db/script.rs), against the same file fed to psql as the app user in
# the db container (what import did before; it ran the file's meta-commands)
# and against `dbaasctl import` of the custom-format dump (pg_restore).
# Each into a fresh database state (the tables dropped between runs),
# REPEATS times, interleaved; medians. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${SCALE:-10}
repeats=${REPEATS:-3}
for t in pgbench psql pg_dump python3; do command -v $t >/dev/null || { echo "$t missing: run scripts/setup-host.sh" >&2; exit 1; }; done
cargo build --release --locked --quiet
bin=$PWD/target/release/dbaasctl
. scripts/lib.sh
scratch_home "${BENCH_PORT_RANGE:-30320-30329}"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

"$bin" create src --memory 1g --cpus 2 --no-backups >/dev/null
"$bin" create dst --memory 1g --cpus 2 --no-backups >/dev/null
src=$("$bin" url src)
dst=$("$bin" url dst)
id=$("$bin" show dst --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "loading pgbench -i -s $scale into src ..." >&2
pgbench -i -s "$scale" -q "$src" >/dev/null 2>&1
"$bin" dump src --format plain >"$home/plain.sql"
"$bin" dump src >"$home/custom.dump"
bytes=$(stat -c %s "$home/plain.sql")
clean() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -c 'DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers' "$dst"; }
check() { [ "$(psql -X -Atc 'SELECT count(*) FROM pgbench_accounts' "$dst")" = $((scale * 100000)) ] || { echo "an import lost rows" >&2; exit 1; }; }

declare -a ours psql_s custom
for _ in $(seq "$repeats"); do
    clean; t=$(now); "$bin" import dst "$home/plain.sql" 2>/dev/null; ours+=("$(since "$t")"); check
    clean; t=$(now)
    docker exec -i "$id-db-1" psql -X -q -v ON_ERROR_STOP=1 -1 -U app -d app <"$home/plain.sql" >/dev/null
    psql_s+=("$(since "$t")"); check
    clean; t=$(now); "$bin" import dst "$home/custom.dump" 2>/dev/null; custom+=("$(since "$t")"); check
done
m_ours=$(printf '%s\n' "${ours[@]}" | median)
m_psql=$(printf '%s\n' "${psql_s[@]}" | median)
m_custom=$(printf '%s\n' "${custom[@]}" | median)
echo "--- import of a plain dump of pgbench -s $scale ($((bytes / 1048576)) MB, $((scale * 100000)) rows), medians of $repeats ---"
echo "dbaasctl import, plain SQL over a client connection: ${m_ours} s (runs: ${ours[*]})"
echo "baseline, psql -1 as the app user in the container:  ${m_psql} s (runs: ${psql_s[*]})"
echo "dbaasctl import, custom format (pg_restore):         ${m_custom} s (runs: ${custom[*]})"
awk -v a="$m_ours" -v b="$m_psql" 'BEGIN { printf "ratio plain/psql: %.2f\n", a / b }'

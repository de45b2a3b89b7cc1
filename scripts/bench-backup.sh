#!/usr/bin/env bash
# Backup benchmark, every figure next to a baseline from the same run:
#   1. a full pgBackRest backup of a ~1 GB database (pgbench -i -s 70) against
#      pg_basebackup of the same instance to the same disk (target <= 1.2x);
#   2. its verification (restore + checks; the sidecar's record, whole
#      seconds) and a restore of it into a new
#      instance until that accepts connections (RTO; target <= 60 s);
#   3. pgbench -N TPS with WAL archiving against the same instance size
#      without (target >= 90%).
# (The RPO after a lost data volume under writes is measured by
# tests/backup/ and printed as a figure there.) Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${SCALE:-70}
duration=${DURATION:-30}
for t in pgbench psql python3; do command -v $t >/dev/null || { echo "$t missing: run scripts/setup-host.sh" >&2; exit 1; }; done
cargo build --release --locked --quiet
bin=$PWD/target/release/dbaasctl
. scripts/lib.sh
scratch_home "${BENCH_PORT_RANGE:-30310-30319}"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

"$bin" create big --memory 2g --cpus 2 >/dev/null
url=$("$bin" url big)
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
id=$("$bin" show big --json | json 'd["id"]')
dir=$home/instances/$id
echo "loading pgbench -i -s $scale ..." >&2
pgbench -i -s "$scale" -q "$url" >/dev/null 2>&1
size=$(psql -X -Atc "SELECT pg_database_size(current_database())" "$url")
compose() { docker compose -p "$id" -f "$dir/docker-compose.yml" "$@"; }

# 1. pg_basebackup (plain, WAL streamed, fast checkpoint) into verify/, on the
#    disk the repository is on, from the sidecar (same CPU limits).
compose exec -T -u postgres backup rm -rf /verify/basebackup
t=$(now)
# As the superuser, with the privileged channel's settings (src/db/privileged.rs).
compose exec -T -u postgres -e PGOPTIONS='-c search_path=pg_catalog,pg_temp' backup \
    pg_basebackup -h /var/run/postgresql -U postgres -D /verify/basebackup -X stream -c fast
base_s=$(since "$t")
base_bytes=$(du -sb "$dir/verify/basebackup" | cut -f1)
compose exec -T -u postgres backup rm -rf /verify/basebackup
# dbaas's own backup (canary, pgBackRest full backup, then the verification),
# as `dbaasctl backup` runs it; the backup's and the verification's times
# are the sidecar's record.
"$bin" backup big --json >"$home/backup.json"
field() { json "$1" <"$home/backup.json"; }
full_s=$(field 'd["duration_s"]')
verify_s=$(field 'd["verification"]["duration_s"]')
label=$(field 'd["label"]')
[ "$(field 'd["verified"]')" = True ] || { echo "the backup failed its verification" >&2; exit 1; }
repo_bytes=$(field 'd["repo_size_bytes"]')

# 2. A restore of that backup into a new instance, until it accepts
#    connections as its app user.
t=$(now)
"$bin" restore big --to rto --backup "$label" >/dev/null
rto_s=$(since "$t")

# 3. Archiving overhead: the same size without backups, runs interleaved.
"$bin" create plain --memory 2g --cpus 2 --no-backups >/dev/null
plain=$("$bin" url plain)
pgbench -i -s 10 -q "$plain" >/dev/null 2>&1
"$bin" destroy rto --yes --delete-backups >/dev/null
tps() { pgbench -N -c 8 -j 2 -T "$duration" -n "$1" 2>/dev/null | awk '/^tps/ {print $3; exit}'; }
pgbench -i -s 10 -q "$url" >/dev/null 2>&1
a1=$(tps "$url"); p1=$(tps "$plain"); a2=$(tps "$url"); p2=$(tps "$plain")
with=$(awk -v a="$a1" -v b="$a2" 'BEGIN { printf "%.0f", (a + b) / 2 }')
without=$(awk -v a="$p1" -v b="$p2" 'BEGIN { printf "%.0f", (a + b) / 2 }')

echo "--- backup benchmark (scale $scale, database $(awk -v b="$size" 'BEGIN { printf "%.2f GB", b / 1e9 }')) ---"
printf 'full backup (pgBackRest, lz4):   %6.1f s, %s in the repository\n' "$full_s" "$(awk -v b="$repo_bytes" 'BEGIN { printf "%.0f MB", b / 1e6 }')"
printf 'pg_basebackup (baseline):        %6.1f s, %s\n' "$base_s" "$(awk -v b="$base_bytes" 'BEGIN { printf "%.0f MB", b / 1e6 }')"
printf 'ratio backup / pg_basebackup:    %6.2f   (target <= 1.2)\n' "$(awk -v a="$full_s" -v b="$base_s" 'BEGIN { print a / b }')"
printf 'verification (restore + checks): %6.1f s\n' "$verify_s"
printf 'restore to a new instance (RTO): %6.1f s   (target <= 60 s)\n' "$rto_s"
printf 'pgbench -N TPS with archiving:   %6s   without: %s   ratio %.2f (target >= 0.90)\n' \
    "$with" "$without" "$(awk -v a="$with" -v b="$without" 'BEGIN { print a / b }')"

#!/usr/bin/env bash
# API benchmark: wrk -c 8 against a real `dbaasctl serve` with INSTANCES (20)
# real instances registered, next to a baseline measured in the same run (a
# static route that touches neither the registry nor docker). Prints req/s,
# p50, p99 and the server's RSS after the run. Traffic stays on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${INSTANCES:-20}
duration=${DURATION:-10s}
port=${BENCH_API_PORT:-18788}
command -v wrk >/dev/null || { echo "wrk missing: run scripts/setup-host.sh" >&2; exit 1; }
cargo build --release --locked --quiet
bin=target/release/dbaasctl
. scripts/lib.sh
scratch_home "${BENCH_PORT_RANGE:-30200-30299}"

echo "creating $n instances..." >&2
for i in $(seq 1 "$n"); do "$bin" create "bench-$i" --memory 256m >/dev/null & done
wait
[ "$("$bin" list --json | grep -c '"id"')" = "$n" ] || { echo "not all $n instances were created" >&2; exit 1; }
id=$("$bin" list --json | grep -m1 '"id"' | sed 's/.*"id": "\(.*\)".*/\1/')

DBAAS_API_TOKEN="$token" "$bin" serve --listen "127.0.0.1:$port" 2>"$home/serve.log" &
server=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/instances/$id" >/dev/null

run() { # label path
    local out rps p50 p99
    out=$(wrk -t 2 -c 8 -d "$duration" --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$port$2")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    printf '%-28s %10s req/s   p50 %8s   p99 %8s\n' "$1" "$rps" "$p50" "$p99"
}
echo "wrk -t 2 -c 8 -d $duration, $n instances registered, $(nproc) CPUs"
run "baseline GET /redoc" "/redoc"
run "GET /instances/{id}" "/instances/$id"
run "GET /instances" "/instances"
echo "serve RSS after the runs: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$server/status)"

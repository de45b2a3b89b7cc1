#!/usr/bin/env bash
# Database-service benchmark: one real instance, one `dbaasctl serve`, and,
# against the same instance's published port in the same run:
#   wrk -c 8  GET  /database/<id>/tables/pgbench_accounts/rows?aid=eq.N (N random)
#   pgbench -S -c 8 -j 2                                  (the baseline for reads)
#   wrk -c 8  POST /database/<id>/tables/pgbench_history/rows (one row each)
#   pgbench -N -c 8 -j 2                                  (the baseline for writes)
# Prints TPS, p50/p99 and the ratios. Traffic stays on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10}
port=${BENCH_DB_PORT:-18789}
for t in wrk pgbench; do command -v $t >/dev/null || { echo "$t missing: run scripts/setup-host.sh" >&2; exit 1; }; done
cargo build --release --locked --quiet
bin=$PWD/target/release/dbaasctl
. scripts/lib.sh
scratch_home "${BENCH_PORT_RANGE:-30300-30309}"

"$bin" create bench --cpus "${CPUS:-2}" --memory 1g >/dev/null
url=$("$bin" url bench)
pgbench -i -s 1 -q "$url" >/dev/null 2>&1
DBAAS_API_TOKEN="$token" "$bin" serve --listen "127.0.0.1:$port" 2>"$home/serve.log" &
server=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done

# Requests are formatted once in init (wrk's per-request Lua formatting costs
# the shared CPUs more than pgbench's client does); N still varies.
cat >"$home/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
local reqs, i = {}, 0
init = function()
  for k = 1, 10000 do
    reqs[k] = wrk.format("GET", "/database/bench/tables/pgbench_accounts/rows?aid=eq." .. math.random(1, 100000))
  end
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
LUA
cat >"$home/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format('{"tid": %d, "bid": 1, "aid": %d, "delta": %d, "mtime": "now"}',
    math.random(1, 10), math.random(1, 100000), math.random(-5000, 5000))
  return wrk.format(nil, "/database/bench/tables/pgbench_history/rows", nil, body)
end
LUA
# Warm the pool and the catalog cache; check both routes answer.
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/database/bench/tables/pgbench_accounts/rows?aid=eq.1" >/dev/null
wrk -t 2 -c 8 -d 2s -s "$home/get.lua" "http://127.0.0.1:$port" >/dev/null

wrk_run() { # script -> "rps p50 p99 non2xx"
    local out
    out=$(wrk -t 2 -c 8 -d "${duration}s" --latency -s "$1" "http://127.0.0.1:$port")
    echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Non-2xx/ {print $NF}' <<<"$out")"
}
pgb() { # flag -> "tps p50 p99" (latencies from pgbench's per-transaction log)
    local d; d=$(mktemp -d)
    local tps; tps=$(cd "$d" && pgbench "$1" -c 8 -j 2 -T "$duration" -n -l "$url" 2>/dev/null | awk '/^tps/ {print $3; exit}')
    echo "$tps $(cat "$d"/pgbench_log.* | awk '{print $3}' | sort -n |
        awk '{a[NR] = $1} END {printf "%.2fms %.2fms", a[int(NR * 0.5)] / 1000, a[int(NR * 0.99)] / 1000}')"
    rm -rf "$d"
}
read -r get_rps get_p50 get_p99 get_bad <<<"$(wrk_run "$home/get.lua")"
read -r sel_tps sel_p50 sel_p99 <<<"$(pgb -S)"
read -r post_rps post_p50 post_p99 post_bad <<<"$(wrk_run "$home/post.lua")"
read -r ins_tps ins_p50 ins_p99 <<<"$(pgb -N)"
[ -z "$get_bad$post_bad" ] || { echo "non-2xx answers: GET ${get_bad:-0}, POST ${post_bad:-0}" >&2; tail -5 "$home/serve.log" >&2; exit 1; }

echo "one instance (--cpus ${CPUS:-2}), pgbench scale 1, ${duration}s each, -c 8, $(nproc) CPUs, DBAAS_DB_CONCURRENCY=${DBAAS_DB_CONCURRENCY:-default}"
printf '%-52s %9s/s   p50 %8s   p99 %8s\n' "API GET rows?aid=eq.N (wrk)" "$get_rps" "$get_p50" "$get_p99"
printf '%-52s %9.0f/s   p50 %8s   p99 %8s\n' "pgbench -S -c 8 -j 2 (baseline)" "$sel_tps" "$sel_p50" "$sel_p99"
printf '%-52s %9s/s   p50 %8s   p99 %8s\n' "API POST one row into pgbench_history (wrk)" "$post_rps" "$post_p50" "$post_p99"
printf '%-52s %9.0f/s   p50 %8s   p99 %8s\n' "pgbench -N -c 8 -j 2 (baseline)" "$ins_tps" "$ins_p50" "$ins_p99"
awk -v a="$get_rps" -v b="$sel_tps" -v c="$post_rps" -v d="$ins_tps" \
    'BEGIN { printf "reads: API / pgbench -S = %.0f%% (target >= 40%%)\nwrites: API / pgbench -N = %.0f%% (target >= 50%%)\n", 100*a/b, 100*c/d }'
echo "serve RSS after the runs: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$server/status)"

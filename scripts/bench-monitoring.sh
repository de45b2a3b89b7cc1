#!/usr/bin/env bash
# Monitoring benchmark (prints figures; not a timed test):
#  1. cargo bench --bench metrics: the latest sample from a 1 GiB metrics file
#     against a 1 MiB one, and a 24 h range streamed through the tailer;
#  2. the agent's CPU over SECONDS (60) at the default 10 s interval, from its
#     container's cgroup (cpuacct.usage), next to the idle database's;
#  3. `dbaasctl serve`'s peak RSS while it streams a 24 h range (8,640 samples)
#     over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_CPU:-60}
port=${BENCH_MON_PORT:-18792}
cargo bench --bench metrics 2>/dev/null | grep -v '^$'
cargo build --release --locked --quiet
bin=$PWD/target/release/dbaasctl
. scripts/lib.sh
scratch_home "${BENCH_PORT_RANGE:-30310-30319}"

"$bin" create benchmon >/dev/null
id=$("$bin" show benchmon --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
usage() { # container -> cpuacct.usage in ns (cgroup v1) or usage_usec * 1000 (v2)
    local full; full=$(docker inspect -f '{{.Id}}' "$1")
    if [ -r "/sys/fs/cgroup/cpuacct/docker/$full/cpuacct.usage" ]; then
        cat "/sys/fs/cgroup/cpuacct/docker/$full/cpuacct.usage"
    else
        awk '/usage_usec/ {print $2 * 1000}' "/sys/fs/cgroup/system.slice/docker-$full.scope/cpu.stat"
    fi
}
sleep 12   # past the first samples and the first size query
a0=$(usage "$id-agent-1"); d0=$(usage "$id-db-1"); t0=$(date +%s%N)
sleep "$seconds"
a1=$(usage "$id-agent-1"); d1=$(usage "$id-db-1"); t1=$(date +%s%N)
samples=$(wc -l <"$home/instances/$id/logs/metrics.json")
awk -v a=$((a1 - a0)) -v d=$((d1 - d0)) -v t=$((t1 - t0)) -v s="$seconds" -v n="$samples" 'BEGIN {
    printf "agent CPU over %d s at a 10 s interval: %.3f%% of one core (%.1f ms per sample; target <= 1%%)\n", s, 100 * a / t, a / 1e6 / (s / 10)
    printf "  baseline, the idle database container in the same window: %.3f%% of one core (%d samples on file)\n", 100 * d / t, n
}'

# A 24 h range over HTTP: 8,640 samples 10 s apart, in the oldest rotated file.
python3 - "$home/instances/$id/logs" <<'PY'
import json, sys, time, datetime
logs = sys.argv[1]
tmpl = [json.loads(l) for l in open(f"{logs}/metrics.json") if '"up": true' in l][-1]
start = time.time() - 86400
with open(f"{logs}/metrics.json.5", "w") as f:
    for i in range(8640):
        tmpl["ts"] = datetime.datetime.fromtimestamp(start + 10 * i, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        tmpl["counters"]["xact_commit"] = i
        f.write(json.dumps(tmpl) + "\n")
PY
DBAAS_API_TOKEN="$token" "$bin" serve --listen "127.0.0.1:$port" 2>"$home/serve.log" &
server=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
hwm() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$server/status"; }
before=$(hwm)
start=$(date +%s%N)
n=$(curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/monitoring/benchmon/metrics?since=25h" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
took=$((($(date +%s%N) - start) / 1000000))
size=$(du -m "$home/instances/$id/logs/metrics.json.5" | cut -f1)
echo "HTTP range since=25h: $n samples (a ${size} MiB file) in $took ms; serve peak RSS $before MiB before, $(hwm) MiB after"

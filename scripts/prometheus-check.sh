#!/usr/bin/env bash
# A real Prometheus (Debian's, unpacked by setup-host.sh) on loopback scrapes
# a real `dbaasctl serve` that manages one real instance, and the series it
# stored are printed. Fails unless the target is healthy, dbaas_up of the
# instance reads 1 and every series docs/monitoring.md lists holds data.
# Run by `make test` (and so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
prom=${PROMETHEUS:-/usr/local/lib/dbaas/prometheus/prometheus}
[ -x "$prom" ] || { echo "prometheus missing: run scripts/setup-host.sh" >&2; exit 1; }
cargo build --locked --quiet
bin=$PWD/target/debug/dbaasctl
api_port=${PROM_API_PORT:-18791}
prom_port=${PROM_PORT:-19091}
. scripts/lib.sh
scratch_home "${PROM_PORT_RANGE:-31910-31919}"

"$bin" create promcheck --metrics-interval 2 >/dev/null
id=$("$bin" show promcheck --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
DBAAS_API_TOKEN="$token" "$bin" serve --listen "127.0.0.1:$api_port" 2>"$home/serve.log" &
server=$!
cat >"$home/prometheus.yml" <<YAML
global:
  scrape_interval: 2s
scrape_configs:
  - job_name: dbaas
    metrics_path: /metrics
    authorization:
      credentials: $token
    static_configs:
      - targets: ["127.0.0.1:$api_port"]
YAML
"$prom" --config.file="$home/prometheus.yml" --web.listen-address="127.0.0.1:$prom_port" \
    --storage.tsdb.path="$home/tsdb" >"$home/prometheus.log" 2>&1 &
prom_pid=$!

query() { curl -fsS --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1"; }
for i in $(seq 60); do
    if query "dbaas_up{dbaas_instance=\"$id\"} == 1" 2>/dev/null | grep -q '"value"'; then break; fi
    [ "$i" = 60 ] && { echo "Prometheus never saw dbaas_up of $id" >&2; tail -20 "$home/prometheus.log" >&2; exit 1; }
    sleep 1
done
curl -fsS "http://127.0.0.1:$prom_port/api/v1/targets" | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"][0]
print("target %s: health %s, last error %r" % (t["scrapeUrl"], t["health"], t["lastError"]))
sys.exit(0 if t["health"] == "up" else 1)'
# Every series docs/monitoring.md lists must hold data: a table for the
# per-table series, and the first backup (verified) for the backup series.
"$bin" psql promcheck -c 'CREATE TABLE promcheck (id int); INSERT INTO promcheck SELECT generate_series(1, 100)' >/dev/null
# dbaas_locks counts other sessions' locks: one holds a lock meanwhile
# (bounded; stopped with the script's other jobs).
"$bin" psql promcheck -c 'BEGIN; LOCK TABLE promcheck IN SHARE MODE; SELECT pg_sleep(300)' >/dev/null 2>&1 &
mapfile -t series < <(sed -n '/^Series in `\/metrics`/,/^config:/p' docs/monitoring.md | tr '\n' ' ' \
    | grep -o '`[a-z_]*\({[a-z,]*}\)\?`' | tr -d '`' | sed 's/{.*//' \
    | grep -vx -e 'dbaas_' -e schema -e table | sort -u | sed 's/^/dbaas_/')
series+=(dbaas_instances dbaas_http_requests_total dbaas_http_request_duration_seconds_count)
[ "${#series[@]}" -gt 30 ] || { echo "prometheus-check: found only ${#series[@]} series in docs/monitoring.md" >&2; exit 1; }
empty=()
for i in $(seq 240); do
    empty=()
    for q in "${series[@]}"; do
        query "$q" | grep -q '"value"' || empty+=("$q")
    done
    [ "${#empty[@]}" = 0 ] && break
    sleep 1
done
[ "${#empty[@]}" = 0 ] || { echo "prometheus-check: no data after 240 s for: ${empty[*]}" >&2; exit 1; }
echo "prometheus-check: all ${#series[@]} series of docs/monitoring.md hold data"
for q in "dbaas_up" "dbaas_connections_max" "dbaas_transactions_committed_total" "dbaas_database_size_bytes" \
         "dbaas_instances" "sum by (route) (dbaas_http_requests_total)"; do
    query "$q" | python3 -c '
import json, sys
q = sys.argv[1]
for r in json.load(sys.stdin)["data"]["result"]:
    labels = ",".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(r["metric"].items()) if k not in ("job", "instance", "__name__"))
    print("  %s{%s} = %s" % (q, labels, r["value"][1]))' "$q"
done
echo "prometheus-check: Prometheus scraped /metrics and stored the series above"

#!/usr/bin/env bash
# A real Prometheus (Debian's, unpacked by setup-host.sh) on loopback scrapes
# a real `dbaasctl serve` that manages one real instance, and the series it
# stored are printed. Fails unless the target is healthy and dbaas_up of the
# instance reads 1. Run by `make test` (and so by CI).
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

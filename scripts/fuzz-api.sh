#!/usr/bin/env bash
# Fuzzes the REST API with schemathesis against its own /openapi.json: a real
# `dbaasctl serve` on loopback in a temporary DBAAS_HOME, a bounded number of
# examples per operation (EXAMPLES, default 10), at most FUZZ_MAX_TIME (300)
# seconds, and a port range of one port so that the instances it manages to
# create stay few. Fails on any server error or any response that does not
# match the schema.
set -euo pipefail
cd "$(dirname "$0")/.."
st=${SCHEMATHESIS:-/usr/local/share/dbaas/venv/bin/schemathesis}
[ -x "$st" ] || { echo "schemathesis missing: run scripts/setup-host.sh" >&2; exit 1; }
cargo build --locked --quiet
bin=target/debug/dbaasctl
port=${FUZZ_PORT:-18787}
. scripts/lib.sh
scratch_home "${FUZZ_PORT_RANGE:-31900-31900}"
DBAAS_API_TOKEN="$token" "$bin" serve --listen "127.0.0.1:$port" 2>"$home/serve.log" &
server=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
"$st" run "http://127.0.0.1:$port/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "${EXAMPLES:-10}" --seed "${SEED:-1}" --workers 1 \
    --request-timeout 300 --max-time "${FUZZ_MAX_TIME:-300}" --warnings off ${FUZZ_ARGS:-}

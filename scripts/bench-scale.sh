#!/usr/bin/env bash
# Scale benchmark: 200 instances of 128 MB on this host, the read paths at
# 10/50/100/200 instances, memory and idle CPU per instance, destroy time
# (see benches/scale.rs). Needs the host set up (scripts/setup-host.sh).
# SCALE_INSTANCES=200 SCALE_BATCH=10 BENCH_PORT_BASE=31000.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked --bench scale

#!/usr/bin/env bash
# Provisioning benchmark: prints medians and ratios against baselines measured
# in the same run (see benches/provision.rs). Needs the host set up
# (scripts/setup-host.sh). REPEATS=5 LIST_INSTANCES=20 BENCH_PORT_BASE=30000.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked --bench provision

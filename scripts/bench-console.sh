#!/usr/bin/env bash
# Console benchmark: the overview's first paint with 20 instances against
# the JSON reads it is made of, and every page's weight (benches/console.rs).
# Needs the host set up (scripts/setup-host.sh).
# CONSOLE_INSTANCES=20 BENCH_PORT_BASE=41000.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked --bench console

# dbaas: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
DBAASCTL := target/release/dbaasctl
# The one test of tests/swarm.rs, which `make test` runs beside the others.
SWARM_TEST := instances_spread_over_the_nodes_connect_at_their_node_and_leave_nothing

.PHONY: all setup build demo test lint fuzz prometheus-check bench clean

all: build

## setup: everything `make test` needs: Compose v2, mmdebstrap, the PostgreSQL images, the test tools and test images (idempotent)
setup:
	bash scripts/setup-host.sh

## build: the release binary
build:
	$(CARGO) build --release --locked

## demo: what a first instance needs (Compose v2, mmdebstrap, the default version's image) and the release build side by side, an instance named demo and its connection string; then the other images build in the background and the API and web console serve on 127.0.0.1:8000 (Ctrl+C stops the server; the instance keeps running)
demo:
	@CARGO=$(CARGO) bash scripts/demo.sh

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## test: everything CI runs, from a fresh clone: host setup, lint, unit and integration tests (the chaos suite included), a real Prometheus scrape, API fuzzing; prints the chaos figures
test: setup lint
	@rm -f target/tmp/chaos-figures.txt target/tmp/swarm-test.log
	@mkdir -p target/tmp
	$(CARGO) test --locked --no-run
	@# The multi-node swarm test (about 12 minutes, most of it waiting on its
	@# nodes) runs beside the other test binaries, not after them; its
	@# output follows theirs. Both must pass.
	@swarm=$$($(CARGO) test --locked --no-run --test swarm 2>&1 | grep -o 'target/debug/deps/swarm-[0-9a-f]*' | head -n 1); \
	  test -x "$$swarm" || { echo "make test: could not find the swarm test binary"; exit 1; }; \
	  echo "running $$swarm beside the other tests (output in target/tmp/swarm-test.log)"; \
	  "$$swarm" --nocapture >target/tmp/swarm-test.log 2>&1 & pid=$$!; \
	  $(CARGO) test --locked --no-fail-fast -- --test-threads=4 --skip $(SWARM_TEST); rest=$$?; \
	  wait $$pid; swarm_status=$$?; \
	  echo "--- tests/swarm.rs (run beside the others) ---"; cat target/tmp/swarm-test.log; \
	  test $$rest = 0 && test $$swarm_status = 0
	bash scripts/prometheus-check.sh
	bash scripts/fuzz-api.sh
	@echo "--- chaos figures of this run (tests/chaos.rs) ---"
	@cat target/tmp/chaos-figures.txt

## prometheus-check: a real Prometheus on loopback scrapes a real server's /metrics and prints the series
prometheus-check: setup
	bash scripts/prometheus-check.sh

## fuzz: schemathesis against the API's own OpenAPI spec (bounded, loopback only)
fuzz: setup
	bash scripts/fuzz-api.sh

## bench: provisioning, API, database, monitoring, backup, import, console and scale (200 instances, ~12 min) benchmarks (print figures; see docs/performance.md)
bench: setup build
	bash scripts/bench-provision.sh
	bash scripts/bench-api.sh
	bash scripts/bench-db.sh
	bash scripts/bench-monitoring.sh
	bash scripts/bench-backup.sh
	bash scripts/bench-import.sh
	bash scripts/bench-console.sh
	bash scripts/bench-scale.sh

clean:
	$(CARGO) clean

#!/usr/bin/env bash
# make demo: from a fresh machine to an instance's connection string, one
# line per step with its seconds; then the other versions' images build in
# the background while the API and the console serve in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
cargo=${CARGO:-cargo}
bin=target/release/dbaasctl
start=$SECONDS
step() { printf 'demo: %s (%d s)\n' "$1" "$((SECONDS - start))" >&2; }
mkdir -p logs

# The host's part and the release build side by side: one waits mostly on
# the mirror and dpkg, the other on the compiler.
step "setting up the host (Compose v2, mmdebstrap, image dbaas/postgres:$(default_version)) and building dbaasctl"
bash scripts/setup-host.sh demo & setup=$!
if ! "$cargo" build --release --locked -q 2>logs/demo-build.log; then
    cat logs/demo-build.log >&2
    kill "$setup" 2>/dev/null || :
    die "cargo build --release failed (above)"
fi
step "dbaasctl built"
wait "$setup" || die "the host setup failed (above)"
step "host ready"

if "$bin" show demo >/dev/null 2>&1; then
    "$bin" up demo >/dev/null
else
    "$bin" create demo >/dev/null
fi
"$bin" url demo
step "instance demo running; its connection string is above"

# The other versions' images, in a session of their own so that Ctrl+C of
# the server below leaves them building.
setsid nohup bash scripts/setup-host.sh images >logs/build-images.log 2>&1 </dev/null &
others=$(for v in $SUPPORTED_VERSIONS; do [ "$v" = "$(default_version)" ] || printf '%s ' "$v"; done)
step "building the images of PostgreSQL ${others% } in the background (logs/build-images.log); a create for those versions waits for its image"
token=$(test -s config/api-token && cat config/api-token || :)
echo "web console: open http://127.0.0.1:8000/ and sign in with the API token${token:+: $token}${token:- that serve prints below}"
exec "$bin" serve --listen 127.0.0.1:8000

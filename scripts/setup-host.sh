#!/usr/bin/env bash
# Prepares this host for dbaas. Idempotent: installs only what is missing and
# says what it did, with the seconds each part took. Needs root (apt-get,
# docker).
#   scripts/setup-host.sh demo     what a first instance needs: Compose v2,
#                                  mmdebstrap, the default version's image
#   scripts/setup-host.sh images   the other versions' images (make demo runs
#                                  it in the background once its instance is up)
#   scripts/setup-host.sh          everything `make test` needs: the above, the
#                                  test tools and the test images
#   VERSIONS="15" scripts/setup-host.sh   only some PostgreSQL images
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
part=${1:-all}
case "$part" in demo | images | all) ;; *) die "unknown part '$part' (demo, images or all)" ;; esac

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and a docker CLI plugin)"
command -v docker >/dev/null || die "docker CLI not found: install Docker Engine (Debian: apt-get install docker.io)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "the Docker daemon is not reachable: start it (systemctl start docker, or dockerd &)"

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then apt-get update -qq >&2; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# 1. Compose v2. Debian bookworm packages only Compose v1; trixie's
#    docker-compose package carries the v2 CLI plugin as a static binary, so we
#    fetch that one package from the host's own mirror without touching the
#    host's apt sources.
compose_v2() {
    if docker compose version >/dev/null 2>&1; then
        say "compose v2 present: $(docker compose version --short)"
    else
        mirror=$(host_mirror)
        tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
        mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/x"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$tmp/sources.list"
        opts=(-o APT::Sandbox::User=root -o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o Dir::State::status=/dev/null)
        apt-get "${opts[@]}" -qq update >&2
        (cd "$tmp" && apt-get "${opts[@]}" -qq download docker-compose >&2)
        dpkg -x "$tmp"/docker-compose_*.deb "$tmp/x"
        install -D -m 0755 "$tmp/x/usr/libexec/docker/cli-plugins/docker-compose" \
            /usr/local/lib/docker/cli-plugins/docker-compose
        say "installed compose v2 plugin: $(docker compose version --short)"
    fi
}

# 2. mmdebstrap, to build the PostgreSQL images offline from Debian packages.
image_builder() {
    if command -v mmdebstrap >/dev/null; then
        say "mmdebstrap present"
    else
        apt_install mmdebstrap
        say "installed mmdebstrap"
    fi
}

# 3-5. The test and benchmark tools (make test alone needs them).
test_tools() {
    # 3. Test and benchmark tools from Debian: headless Chromium and its
    #    WebDriver (the docs pages and the console's browser tests), wrk (API
    #    benchmarks), pgbench (the database benchmark's baseline).
    missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v unzip >/dev/null || missing+=(unzip)
    command -v pgbench >/dev/null || missing+=(postgresql-client)
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}"
        say "installed ${missing[*]}"
    else
        say "chromium, chromedriver, wrk, unzip, pgbench present"
    fi

    # 4. ReDoc's standalone bundle, from the PyPI package that ships it, so /redoc
    #    works offline; it is never committed to the repository.
    share=/usr/local/share/dbaas
    if [ -s "$share/redoc.standalone.js" ]; then
        say "ReDoc bundle present"
    else
        tmp_redoc=$(mktemp -d)
        python3 -m pip download --quiet --no-deps --only-binary=:all: drf-spectacular-sidecar -d "$tmp_redoc" >&2
        unzip -q -o -j "$tmp_redoc"/drf_spectacular_sidecar-*.whl \
            'drf_spectacular_sidecar/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js' -d "$tmp_redoc/x"
        install -D -m 0644 "$tmp_redoc/x/redoc.standalone.js" "$share/redoc.standalone.js"
        rm -rf "$tmp_redoc"
        say "installed ReDoc bundle into $share"
    fi

    # 4b. Prometheus and promtool from Debian's prometheus package, unpacked (no
    #     service is installed or started): promtool checks /metrics in the tests,
    #     and `make prometheus-check` scrapes a real server with a real Prometheus.
    if [ -x /usr/local/lib/dbaas/prometheus/promtool ] && [ -x /usr/local/lib/dbaas/prometheus/prometheus ]; then
        say "prometheus and promtool present"
    else
        tmp_prom=$(mktemp -d)
        if [ "$apt_updated" = 0 ]; then apt-get update -qq >&2; apt_updated=1; fi
        (cd "$tmp_prom" && apt-get -o APT::Sandbox::User=root -qq download prometheus >&2)
        dpkg -x "$tmp_prom"/prometheus_*.deb "$tmp_prom/x"
        install -D -m 0755 "$tmp_prom/x/usr/bin/promtool" /usr/local/lib/dbaas/prometheus/promtool
        install -D -m 0755 "$tmp_prom/x/usr/bin/prometheus" /usr/local/lib/dbaas/prometheus/prometheus
        rm -rf "$tmp_prom"
        say "installed prometheus and promtool into /usr/local/lib/dbaas/prometheus"
    fi

    # 5. schemathesis (PyPI), in its own virtualenv, for `make fuzz`.
    if [ -x "$share/venv/bin/schemathesis" ]; then
        say "schemathesis present"
    else
        python3 -m venv "$share/venv"
        "$share/venv/bin/pip" install --quiet schemathesis >&2
        say "installed schemathesis into $share/venv"
    fi
}

# 6. The PostgreSQL images, each built under a lock that dbaasctl also
#    reads (/run/dbaas/image-<image>.lock): a create that needs an
#    image being built waits for it instead of failing. Checked again once
#    the lock is held: another run may have built it meanwhile.
postgres_images() {
    local v have lock
    image_lock_dir
    for v in "$@"; do
        lock=$IMAGE_LOCK_DIR/image-$(image_lock_name "dbaas/postgres:$v").lock
        (
            exec 9>"$lock"
            chmod 0644 "$lock"
            flock 9
            have=$(docker image inspect -f '{{ index .Config.Labels "dbaas.recipe_sha" }}' "dbaas/postgres:$v" 2>/dev/null || true)
            if [ "$have" = "$(recipe_sha)" ]; then
                say "image dbaas/postgres:$v present"
            else
                "$here/build-image.sh" "$v"
            fi
        )
    done
}

# 7-8. The test images.
test_images() {
    # 7. The S3-compatible server of the backup tests (moto behind stunnel4).
    have=$(docker image inspect -f '{{ index .Config.Labels "dbaas.recipe_sha" }}' dbaas/s3test 2>/dev/null || true)
    if [ "$have" = "$(s3_recipe_sha)" ]; then
        say "image dbaas/s3test present"
    else
        "$here/build-s3-image.sh"
    fi
    # 8. The Docker-in-Docker node (and registry) of the multi-node swarm tests.
    have=$(docker image inspect -f '{{ index .Config.Labels "dbaas.recipe_sha" }}' dbaas/swarm-node 2>/dev/null || true)
    if [ "$have" = "$(node_recipe_sha)" ]; then
        say "image dbaas/swarm-node present"
    else
        "$here/build-node-image.sh"
    fi
}

# Seconds each part took, on the line that ends it.
timed() {
    local t0=$SECONDS
    "$@"
    say "$1: done in $((SECONDS - t0)) s"
}

default=$(default_version)
case "$part" in
    demo)
        timed compose_v2
        timed image_builder
        timed postgres_images "$default"
        ;;
    images)
        others=()
        for v in $SUPPORTED_VERSIONS; do [ "$v" = "$default" ] || others+=("$v"); done
        timed image_builder
        timed postgres_images "${others[@]}"
        ;;
    all)
        timed compose_v2
        timed image_builder
        timed test_tools
        # shellcheck disable=SC2086
        timed postgres_images ${VERSIONS:-$SUPPORTED_VERSIONS}
        timed test_images
        ;;
esac
say "host ready ($part)"

# Shared helpers for the host scripts. Sourced, not run.

say() { printf 'dbaas-setup: %s\n' "$*" >&2; }
die() { printf 'dbaas-setup: error: %s\n' "$*" >&2; exit 1; }

# The Debian mirror this host already uses, read from its apt configuration
# (deb822 .sources files first, then one-line sources.list entries), so that no
# registry host name is ever written into the project. MIRROR overrides it.
host_mirror() {
    if [ -n "${MIRROR:-}" ]; then printf '%s\n' "$MIRROR"; return; fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        # The first stanza whose suites are not the security suite.
        uri=$(awk 'BEGIN{RS="";FS="\n"}
            { u=""; s=""; for (i=1;i<=NF;i++) { if ($i ~ /^URIs:/) u=$i; if ($i ~ /^Suites:/) s=$i }
              if (u != "" && s !~ /security/) { sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); print a[1]; exit } }' "$f")
        if [ -n "$uri" ]; then printf '%s\n' "${uri%/}"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
        if [ -n "$uri" ]; then printf '%s\n' "${uri%/}"; return; fi
    done
    die "cannot find a Debian mirror in /etc/apt; set MIRROR=<url of a Debian mirror>"
}

# Debian suite that ships each supported PostgreSQL major version.
suite_for_version() {
    case "$1" in
        13) echo bullseye ;;
        15) echo bookworm ;;
        17) echo trixie ;;
        *) die "unsupported PostgreSQL version '$1' (supported: 13 15 17)" ;;
    esac
}

SUPPORTED_VERSIONS="13 15 17"

# The version a create gets without --version (src/validate.rs's
# DEFAULT_VERSION; a unit test holds the two equal).
DBAAS_DEFAULT_VERSION=15
default_version() { echo "$DBAAS_DEFAULT_VERSION"; }

# Where the images' build locks live: a directory of root's (/run/lock is
# world-writable, where a planted symlink would have root truncate its
# target); refused if it is anything else.
IMAGE_LOCK_DIR=/run/dbaas
image_lock_dir() {
    [ -e "$IMAGE_LOCK_DIR" ] || install -d -o root -g root -m 0755 "$IMAGE_LOCK_DIR"
    [ -d "$IMAGE_LOCK_DIR" ] && [ ! -L "$IMAGE_LOCK_DIR" ] && [ "$(stat -c %u "$IMAGE_LOCK_DIR")" = 0 ] \
        || die "$IMAGE_LOCK_DIR must be a directory of root's (remove it and run again)"
}

# The name of an image's build lock in IMAGE_LOCK_DIR (src/engine/image_lock.rs
# makes the same): the reference with every character but letters, digits,
# '.' and '-' as '_'.
image_lock_name() { printf '%s' "$1" | tr -c 'A-Za-z0-9.-' '_'; }

# Images carry the hash of their recipe (this build script and the
# entrypoint), so that setup-host.sh rebuilds them when either changes.
recipe_sha() {
    local d
    d=$(dirname "${BASH_SOURCE[0]}")
    cat "$d/build-image.sh" "$d/docker-entrypoint.sh" | sha256sum | cut -c1-16
}

# The same for the swarm-node image of the multi-node tests.
node_recipe_sha() {
    local d
    d=$(dirname "${BASH_SOURCE[0]}")
    cat "$d/build-node-image.sh" "$d/swarm-node.sh" | sha256sum | cut -c1-16
}

# For the benchmarks and checks: a throwaway DBAAS_HOME on its own port range
# (sets `home`) and a random API token (sets `token`). On exit the script's
# background jobs (the server, Prometheus) are stopped, every instance of the
# home is destroyed with "$bin", and the home is removed, whatever the
# jobs' exit statuses.
scratch_home() { # port range
    home=$(mktemp -d)
    export DBAAS_HOME="$home" DBAAS_PORT_RANGE=$1
    token="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    trap scratch_cleanup EXIT
}

scratch_cleanup() {
    local p d
    for p in $(jobs -p); do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
    for d in "$home"/instances/db_*; do [ -d "$d" ] && "$bin" destroy "$(basename "$d")" --yes >/dev/null 2>&1 & done
    wait || true
    rm -rf "$home"
}

# The S3 test server's moto, pinned so that the image is the same on every
# host; its recipe hash, for setup-host.sh to rebuild it when it changes.
MOTO_VERSION=5.2.5
s3_recipe_sha() {
    local d
    d=$(dirname "${BASH_SOURCE[0]}")
    { cat "$d/build-s3-image.sh"; echo "$MOTO_VERSION"; } | sha256sum | cut -c1-16
}

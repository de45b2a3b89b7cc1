#!/usr/bin/env bash
# Builds dbaas/postgres:VERSION offline from Debian's packages: mmdebstrap makes a
# minimal root filesystem with postgresql-VERSION, pgBackRest (the version of
# the same Debian release; the backup sidecar reads its JSON with jq) and our
# entrypoint, and
# `docker import` turns it into an image with the official image's contract
# (POSTGRES_USER/PASSWORD/DB, PGDATA, /docker-entrypoint-initdb.d).
#   scripts/build-image.sh 15        MIRROR=<url> overrides the host's mirror
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

v=${1:?usage: scripts/build-image.sh VERSION (one of: $SUPPORTED_VERSIONS)}
suite=$(suite_for_version "$v")
mirror=$(host_mirror)
tag="dbaas/postgres:$v"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing: run scripts/setup-host.sh (or apt-get install mmdebstrap)"

say "building $tag from Debian $suite (postgresql-$v)"
start=$(date +%s)
# The cluster that postgresql-common creates at install is removed: the
# entrypoint runs initdb itself into PGDATA. /logs belongs to the agent's
# user, so that a new volume mounted there (a swarm instance's) does too.
mmdebstrap --quiet --variant=minbase --include="postgresql-$v,pgbackrest,jq" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook='rm -rf "$1"/var/lib/postgresql/*/main "$1"/etc/postgresql/*' \
    --customize-hook="copy-in $here/docker-entrypoint.sh /usr/local/bin/" \
    --customize-hook='chmod 0755 "$1/usr/local/bin/docker-entrypoint.sh"; mkdir -p "$1/docker-entrypoint-initdb.d";' \
    --customize-hook='mkdir -p "$1/logs"; chown 65534:65534 "$1/logs"' \
    "$suite" - "deb $mirror $suite main" \
  | docker import - "dbaas/postgres-rootfs:$v" >/dev/null
# The image's metadata, in a Dockerfile read from stdin (no build context).
build_log=$(mktemp)
DOCKER_BUILDKIT=0 docker build --quiet -t "$tag" - >/dev/null 2>"$build_log" <<DOCKERFILE || { cat "$build_log" >&2; die "docker build of $tag failed"; }
FROM dbaas/postgres-rootfs:$v
ENV PG_MAJOR=$v
ENV PATH=/usr/lib/postgresql/$v/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV PGDATA=/var/lib/postgresql/data
ENV LANG=C.UTF-8
LABEL dbaas.image=postgres dbaas.pg_major=$v dbaas.recipe_sha=$(recipe_sha)
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
DOCKERFILE
rm -f "$build_log"
# Only the final image is kept; superseded builds are removed.
docker rmi "dbaas/postgres-rootfs:$v" >/dev/null
docker image prune -f --filter label=dbaas.image=postgres >/dev/null
say "built $tag in $(( $(date +%s) - start )) s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%d MB", $1/1e6}'))"

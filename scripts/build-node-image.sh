#!/usr/bin/env bash
# Builds dbaas/swarm-node, the Docker-in-Docker node of the multi-node tests
# (tests/swarm.rs), offline from Debian's packages: docker.io (Engine 20.10,
# the host's own) and Debian's docker-registry, on a bookworm root
# filesystem made by mmdebstrap. No image is pulled. Only tests use it, on a
# Docker network they create; the host's daemon never joins their swarm.
#   scripts/build-node-image.sh      MIRROR=<url> overrides the host's mirror
#
# In the container (see scripts/swarm-node.sh):
#   swarm-node node       dockerd, its socket in /run/dbaas-node (bind-mount
#                         it to reach the daemon from the host)
#   swarm-node registry   a plain-HTTP image registry on :5000
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

tag=dbaas/swarm-node
mirror=$(host_mirror)
command -v mmdebstrap >/dev/null || die "mmdebstrap missing: run scripts/setup-host.sh"
say "building $tag (docker.io and docker-registry, Debian bookworm)"
start=$(date +%s)
mmdebstrap --quiet --variant=minbase --include="docker.io,iptables,docker-registry,procps,ca-certificates" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --customize-hook="copy-in $here/swarm-node.sh /usr/local/bin/" \
    --customize-hook='chmod 0755 "$1/usr/local/bin/swarm-node.sh"' \
    bookworm - "deb $mirror bookworm main" |
    docker import --change 'ENTRYPOINT ["swarm-node.sh"]' --change 'CMD ["node"]' \
        --change "LABEL dbaas.image=swarm-node dbaas.recipe_sha=$(node_recipe_sha)" - "$tag" >/dev/null
say "built $tag in $(($(date +%s) - start)) s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%d MB", $1/1e6}'))"

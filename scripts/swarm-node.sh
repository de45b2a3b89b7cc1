#!/bin/bash
# Entrypoint of dbaas/swarm-node (scripts/build-node-image.sh): one node of
# the test swarm, or its image registry.
#   swarm-node.sh node       dockerd with vfs storage (no overlay inside the
#                            node's own filesystem), its containers under a
#                            cgroup parent named for the node (removed by
#                            the test afterwards), trusting the registry
#                            $DBAAS_REGISTRY (host:port) over plain HTTP; its
#                            socket is /run/dbaas-node/docker.sock
#   swarm-node.sh registry   Debian's docker-registry on :5000
set -euo pipefail
case "${1:-node}" in
    node)
        mkdir -p /run/dbaas-node
        args=(--storage-driver=vfs --cgroup-parent="/dbaas-swarm-$(hostname)"
            -H unix:///run/dbaas-node/docker.sock --exec-root=/run/docker-exec
            --log-driver=json-file --log-opt max-size=10m)
        [ -z "${DBAAS_REGISTRY:-}" ] || args+=(--insecure-registry="$DBAAS_REGISTRY")
        exec dockerd "${args[@]}"
        ;;
    registry)
        mkdir -p /var/lib/registry
        cat >/tmp/registry.yml <<'EOF'
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
EOF
        exec docker-registry serve /tmp/registry.yml
        ;;
    *)
        echo "usage: swarm-node.sh node|registry" >&2
        exit 2
        ;;
esac

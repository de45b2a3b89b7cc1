#!/usr/bin/env bash
# Builds dbaas/s3test, the S3-compatible server the backup tests use: moto's
# server mode (PyPI) behind Debian's stunnel4 for TLS, on a Debian root
# filesystem made by mmdebstrap (no image is pulled). Only tests use it, on a
# Docker network they create; it keeps everything in memory.
#   scripts/build-s3-image.sh        MIRROR=<url> overrides the host's mirror
#
# In the container: `s3-server BUCKET` serves https on 443 (self-signed
# certificate made at start), with BUCKET created; keys are any.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

tag=dbaas/s3test
mirror=$(host_mirror)
command -v mmdebstrap >/dev/null || die "mmdebstrap missing: run scripts/setup-host.sh"
say "building $tag (moto $MOTO_VERSION behind stunnel4, Debian bookworm)"
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Wheels for the image's Python (bookworm: 3.11), fetched on the host with its
# own pip configuration.
env -u PIP_FIND_LINKS python3 -m pip download --quiet --dest "$work/wheels" --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --python-version 3.11 --implementation cp \
    "moto[s3]==$MOTO_VERSION" flask flask-cors >&2 ||
    die "pip could not fetch moto $MOTO_VERSION and its dependencies"

cat >"$work/s3-server" <<'SH'
#!/bin/bash
# moto on 127.0.0.1:5000, stunnel on :443 in front of it, BUCKET created.
set -euo pipefail
bucket=${1:?usage: s3-server BUCKET}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=s3" \
    -keyout /tmp/s3.key -out /tmp/s3.crt 2>/dev/null
cat >/tmp/stunnel.conf <<EOF
foreground = no
pid = /tmp/stunnel.pid
[s3]
accept = 443
connect = 127.0.0.1:5000
cert = /tmp/s3.crt
key = /tmp/s3.key
EOF
# Path-style addressing whatever the host name (else moto reads a bucket
# name out of a name like s3.example.test).
S3_IGNORE_SUBDOMAIN_BUCKETNAME=true /opt/moto/bin/moto_server -H 127.0.0.1 -p 5000 >/tmp/moto.log 2>&1 &
moto=$!
for _ in $(seq 1 100); do
    /opt/moto/bin/python -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:5000/moto-api/")' 2>/dev/null && break
    sleep 0.1
done
/opt/moto/bin/python - "$bucket" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:5000/{sys.argv[1]}", method="PUT"))
PY
stunnel4 /tmp/stunnel.conf
echo "s3-server: bucket $bucket on :443"
wait "$moto"
SH

mmdebstrap --quiet --variant=minbase --include="python3,python3-venv,stunnel4,openssl" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="copy-in $work/wheels /tmp" \
    --customize-hook="copy-in $work/s3-server /usr/local/bin/" \
    --customize-hook='chroot "$1" python3 -m venv /opt/moto' \
    --customize-hook='chroot "$1" env -u PIP_FIND_LINKS /opt/moto/bin/pip install --quiet --no-index --find-links /tmp/wheels "moto[s3]" flask flask-cors' \
    --customize-hook='rm -rf "$1/tmp/wheels"; chmod 0755 "$1/usr/local/bin/s3-server"' \
    bookworm - "deb $mirror bookworm main" |
    docker import --change 'ENTRYPOINT ["s3-server"]' --change 'CMD ["dbaas-test"]' \
        --change "LABEL dbaas.image=s3test dbaas.recipe_sha=$(s3_recipe_sha)" - "$tag" >/dev/null
say "built $tag in $(($(date +%s) - start)) s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%d MB", $1/1e6}'))"

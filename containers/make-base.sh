#!/usr/bin/env bash
# Build the local base image for the container test: a minimal Debian bookworm rootfs made with
# debootstrap (Python 3.11 + venv + CA certificates), imported into podman. No registry pull.
#   containers/make-base.sh [IMAGE]        (default IMAGE: localhost/taupet-base:bookworm)
# Idempotent: does nothing when the image already exists (FORCE=1 rebuilds it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=containers/env.sh
source "$here/env.sh"
image="${1:-$TAUPET_BASE_IMAGE}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [[ "${FORCE:-0}" != 1 ]] && podman image exists "$image"; then
    echo "base image $image exists"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install debootstrap)" >&2; exit 2; }

rootfs="$(mktemp -d /var/tmp/taupet-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,libgomp1 \
    bookworm "$rootfs" "$mirror"
# Slim the rootfs: package lists, caches, docs and man pages are not needed at run time.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log
tar -C "$rootfs" --numeric-owner -c . |
    podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$image"
podman image ls "$image"
